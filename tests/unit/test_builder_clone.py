"""Cloning exactly one commit with GitPython, and the precise causes when it cannot."""

from __future__ import annotations

from pathlib import Path

import pytest

from flops_common.redaction import redact, strip_userinfo
from image_builder.clone import check_repo_url, clone_commit
from image_builder.errors import BuildError
from image_builder.steps import BuildStep
from tests.helpers.corpus import corpus_repo
from tests.helpers.git_repos import file_url, make_git_repo


@pytest.fixture(scope="module")
def two_commits(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    repo = tmp_path_factory.mktemp("origin") / "repo"
    first = make_git_repo(corpus_repo("valid_minimal"), repo)
    second = make_git_repo(corpus_repo("fit_raises"), repo, message="code-only change")
    return repo, first, second


def _fails(url: str, commit: str, dest: Path) -> str:
    with pytest.raises(BuildError) as info:
        clone_commit(url, commit, dest)
    assert info.value.step is BuildStep.CLONE
    return info.value.cause


def test_clones_exactly_the_commit(two_commits: tuple[Path, str, str], tmp_path: Path) -> None:
    repo, first, second = two_commits
    assert clone_commit(file_url(repo), first, tmp_path / "a") == first
    assert "on purpose" not in (tmp_path / "a" / "model_manager.py").read_text()
    assert clone_commit(file_url(repo), second, tmp_path / "b") == second
    assert "on purpose" in (tmp_path / "b" / "model_manager.py").read_text()


def test_abbreviated_commit_falls_back_to_a_partial_fetch(two_commits: tuple[Path, str, str], tmp_path: Path) -> None:
    repo, first, _ = two_commits
    assert clone_commit(file_url(repo), first[:10].upper(), tmp_path / "c") == first


def test_missing_commit(two_commits: tuple[Path, str, str], tmp_path: Path) -> None:
    repo, _, _ = two_commits
    missing = "0123456789" * 4
    cause = _fails(file_url(repo), missing, tmp_path / "d")
    assert cause == f"commit {missing} does not exist in repo {file_url(repo)}"


def test_missing_repo(tmp_path: Path) -> None:
    url = file_url(tmp_path / "nowhere")
    cause = _fails(url, "a" * 40, tmp_path / "e")
    assert cause == f"cannot fetch repo {url}: fatal: '{tmp_path / 'nowhere'}' does not appear to be a git repository"


def test_credentials_never_appear(tmp_path: Path) -> None:
    url = "https://alice:s3cr3t-token@127.0.0.1:1/team/repo.git"  # nothing listens on port 1
    cause = _fails(url, "a" * 40, tmp_path / "f")
    assert cause.startswith("cannot fetch repo https://127.0.0.1:1/team/repo.git: ")
    assert "s3cr3t" not in cause and "alice" not in cause


@pytest.mark.parametrize(
    ("url", "cause"),
    [
        ("--upload-pack=touch /tmp/x", "repo URL '--upload-pack=touch /tmp/x' is not a valid git URL"),
        ("-oProxyCommand=x", "repo URL '-oProxyCommand=x' is not a valid git URL"),
        ("ext::sh -c touch% /tmp/pwned", "repo URL 'ext::sh -c touch% /tmp/pwned' is not a valid git URL"),
        ("ext::sh", "repo URL scheme 'ext' is not one of https, ssh, git, file"),
        ("/srv/repo", "repo URL scheme '(none)' is not one of https, ssh, git, file"),
    ],
)
def test_option_injection_and_transports_refused(url: str, cause: str) -> None:
    with pytest.raises(BuildError) as info:
        check_repo_url(url)
    assert info.value.cause == cause


def test_commit_must_be_hex(two_commits: tuple[Path, str, str], tmp_path: Path) -> None:
    repo, _, _ = two_commits
    assert _fails(file_url(repo), "--all", tmp_path / "g") == "'--all' is not a commit id (expected hex digits)"
    assert _fails(file_url(repo), "main", tmp_path / "h") == "'main' is not a commit id (expected hex digits)"


def test_scp_like_and_https_urls_are_accepted() -> None:
    check_repo_url("git@github.com:org/repo.git")
    check_repo_url("https://github.com/org/repo.git")


def test_redaction() -> None:
    url = "https://bob:tok3n@git.example.invalid/r.git"
    assert strip_userinfo(url) == "https://git.example.invalid/r.git"
    assert strip_userinfo("git@github.com:org/repo.git") == "git@github.com:org/repo.git"
    text = f"fatal: unable to access '{url}': bob:tok3n rejected"
    assert redact(text, url) == "fatal: unable to access 'https://git.example.invalid/r.git': *** rejected"
