"""Service identities of the local backend: one uid per service, allocated once, never shared."""

from __future__ import annotations

from pathlib import Path

from flops_manager.orchestrator.local_identity import SERVICE_SPAN, ServiceIdentities, make_searchable


def test_every_service_gets_an_identity_of_its_own(tmp_path: Path) -> None:
    identities = ServiceIdentities(tmp_path, uid_base=300_000)
    first, second = identities.allocate(), identities.allocate()
    assert (first.uid, first.gid) == (300_000, 300_000) and second.uid == 300_001
    # A restarted manager goes on where the last one stopped.
    assert ServiceIdentities(tmp_path, uid_base=300_000).allocate().uid == 300_002
    assert max(first.uid, second.uid) < 300_000 + SERVICE_SPAN


def test_make_searchable_adds_only_search_to_folders_lacking_it(tmp_path: Path) -> None:
    private = tmp_path / "private"
    inner = private / "inner"
    inner.mkdir(parents=True)
    private.chmod(0o700)
    inner.chmod(0o755)
    changed = make_searchable(inner, below=tmp_path)
    assert private in changed and inner not in changed
    assert private.stat().st_mode & 0o777 == 0o701
