"""Fetches exactly one commit of a repo with GitPython: shallow by commit id, partial clone as fallback."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import git

from flops_common.redaction import redact, strip_userinfo
from flops_common.sla import ALLOWED_REPO_SCHEMES
from image_builder.errors import BuildError
from image_builder.steps import BuildStep

_SCP_LIKE = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9._-]+:[^:]")
_COMMIT = re.compile(r"^[0-9a-f]{4,64}$")
_FULL_COMMIT_LENGTHS = (40, 64)  # sha1, sha256
# Errors after which the commit may still exist: the server just refuses fetching by id.
_UNADVERTISED = ("not our ref", "unadvertised object", "couldn't find remote ref", "no such remote ref")
GIT_TIMEOUT_S = 600


def check_repo_url(url: str) -> None:
    """Refuse URLs that could inject options or use a transport other than https, ssh, git, file."""
    if not url or url.startswith("-") or any(c.isspace() or ord(c) < 32 for c in url):
        raise BuildError(BuildStep.CLONE, f"repo URL {strip_userinfo(url)!r} is not a valid git URL")
    if _SCP_LIKE.match(url):
        return
    scheme = urlsplit(url).scheme
    if scheme not in ALLOWED_REPO_SCHEMES:
        raise BuildError(
            BuildStep.CLONE,
            f"repo URL scheme {scheme or '(none)'!r} is not one of {', '.join(ALLOWED_REPO_SCHEMES)}",
        )


def _git_environment() -> dict[str, str]:
    env = {
        "GIT_TERMINAL_PROMPT": "0",  # never wait for a password on a missing/private repo
        "GIT_ALLOW_PROTOCOL": "file:git:http:https:ssh",  # no ext:: or other helpers
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_LFS_SKIP_SMUDGE": "1",
    }
    if "GIT_SSH_COMMAND" not in os.environ:
        env["GIT_SSH_COMMAND"] = "ssh -o BatchMode=yes"
    return env


@contextmanager
def _environment(repo: git.Repo) -> Iterator[None]:
    with repo.git.custom_environment(**_git_environment()):
        yield


def _last_error_line(exc: git.GitCommandError, url: str) -> str:
    stderr = exc.stderr if isinstance(exc.stderr, str) else str(exc.stderr or "")
    lines = [line.strip() for line in stderr.replace("stderr:", "").strip(" '\n").splitlines()]
    fatal = [line for line in lines if line.startswith(("fatal:", "error:", "ERROR:", "remote:"))]
    chosen = fatal[0] if fatal else (lines[-1] if lines else f"git exited with {exc.status}")
    return redact(chosen.strip(" '"), url)


def clone_commit(url: str, commit: str, dest: Path) -> str:
    """Check out ``commit`` of the repo at ``url`` into ``dest`` (a new directory); return the full id.

    Tries a depth-1 fetch of the commit id first; when the server refuses fetching by id (or the id
    is abbreviated), fetches all branches and tags without blobs and looks the commit up.
    Raises BuildError(CLONE) naming the cause: unreachable repo or missing commit.
    """
    check_repo_url(url)
    commit = commit.strip().lower()
    shown = strip_userinfo(url)
    if not _COMMIT.match(commit):
        raise BuildError(BuildStep.CLONE, f"{commit!r} is not a commit id (expected hex digits)")
    repo = git.Repo.init(dest)
    try:
        with _environment(repo):
            repo.git.remote("add", "--", "origin", url)
            fetched = False
            if len(commit) in _FULL_COMMIT_LENGTHS:
                try:
                    repo.git.fetch("--depth=1", "--no-tags", "--", "origin", commit, kill_after_timeout=GIT_TIMEOUT_S)
                    fetched = True
                except git.GitCommandError as exc:
                    message = _last_error_line(exc, url)
                    if not any(marker in message for marker in _UNADVERTISED):
                        raise BuildError(BuildStep.CLONE, f"cannot fetch repo {shown}: {message}") from None
            if not fetched:
                try:
                    repo.git.fetch(
                        "--filter=blob:none",
                        "--tags",
                        "--",
                        "origin",
                        "+refs/heads/*:refs/remotes/origin/*",
                        kill_after_timeout=GIT_TIMEOUT_S,
                    )
                except git.GitCommandError as exc:
                    message = _last_error_line(exc, url)
                    raise BuildError(BuildStep.CLONE, f"cannot fetch repo {shown}: {message}") from None
            try:
                full = repo.git.rev_parse("--verify", "--quiet", "--end-of-options", f"{commit}^{{commit}}")
            except git.GitCommandError:
                raise BuildError(BuildStep.CLONE, f"commit {commit} does not exist in repo {shown}") from None
            repo.git.checkout("--quiet", "--detach", full, kill_after_timeout=GIT_TIMEOUT_S)
            head = repo.head.commit.hexsha
            if head != full:
                raise BuildError(BuildStep.CLONE, f"checked out {head}, expected {full}")
            return head
    finally:
        repo.close()
