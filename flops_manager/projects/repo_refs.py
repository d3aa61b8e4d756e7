"""Resolving the SLA's git ref to a commit, without cloning."""

from __future__ import annotations

import re
import subprocess

from flops_common.redaction import redact_url

__all__ = ["RefResolutionError", "redact_url", "resolve_commit"]  # redact_url: re-exported for the engine

_SHA = re.compile(r"^[0-9a-f]{40}$")


class RefResolutionError(RuntimeError):
    """The repository or the ref cannot be found; the message says which."""


def resolve_commit(repo_url: str, ref: str | None, timeout_s: float = 60.0) -> str:
    """The commit ``ref`` (branch, tag, or HEAD when None) points to in ``repo_url``.

    A full commit sha is returned as given: the builder checks that it exists.
    """
    if ref and _SHA.match(ref.lower()):
        return ref.lower()
    wanted = ref or "HEAD"
    try:
        out = subprocess.run(
            ["git", "ls-remote", "--", repo_url, wanted],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env={
                "GIT_TERMINAL_PROMPT": "0",
                "PATH": "/usr/bin:/bin",
                "GIT_SSH_COMMAND": "ssh -oBatchMode=yes",
            },
        )
    except subprocess.TimeoutExpired as exc:
        raise RefResolutionError(f"repository {redact_url(repo_url)} did not answer within {timeout_s:.0f} s") from exc
    if out.returncode != 0:
        lines = [ln.strip() for ln in out.stderr.splitlines() if ln.strip()]
        fatal = [ln for ln in lines if ln.startswith(("fatal:", "error:"))]
        detail = (fatal or lines or ["no details"])[0]
        raise RefResolutionError(f"repository {redact_url(repo_url)} cannot be read: {redact_url(detail)}")
    refs: dict[str, str] = {}
    for line in out.stdout.splitlines():
        sha, _, name = line.partition("\t")
        refs[name] = sha
    for candidate in (wanted, f"refs/heads/{wanted}", f"refs/tags/{wanted}^{{}}", f"refs/tags/{wanted}"):
        if candidate in refs:
            return refs[candidate]
    raise RefResolutionError(f"ref {wanted!r} does not exist in {redact_url(repo_url)}")
