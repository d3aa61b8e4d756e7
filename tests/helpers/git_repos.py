"""Turns plain directories of the test corpus into git repos with a fixed author."""

from __future__ import annotations

import shutil
from pathlib import Path

import git

AUTHOR_NAME = "FLOps Tests"
AUTHOR_EMAIL = "tests@flops.invalid"
_FIXED_DATE = "2024-01-01T00:00:00+00:00"


def _git_env() -> dict[str, str]:
    return {
        "GIT_AUTHOR_NAME": AUTHOR_NAME,
        "GIT_AUTHOR_EMAIL": AUTHOR_EMAIL,
        "GIT_COMMITTER_NAME": AUTHOR_NAME,
        "GIT_COMMITTER_EMAIL": AUTHOR_EMAIL,
        "GIT_AUTHOR_DATE": _FIXED_DATE,
        "GIT_COMMITTER_DATE": _FIXED_DATE,
        "GIT_CONFIG_NOSYSTEM": "1",
    }


def make_git_repo(src_dir: Path, dest: Path, message: str = "") -> str:
    """Commit the files of ``src_dir`` to the git repo at ``dest``; return the commit sha.

    ``dest`` is created (branch ``main``) if it is not a repo yet; otherwise its work tree is
    replaced by ``src_dir`` and a new commit is added on top, so the same ``dest`` can receive
    a sequence of commits (e.g. a code-only change).
    """
    dest = Path(dest)
    if (dest / ".git").is_dir():
        repo = git.Repo(dest)
        for entry in dest.iterdir():
            if entry.name == ".git":
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    else:
        dest.mkdir(parents=True, exist_ok=True)
        repo = git.Repo.init(dest, initial_branch="main")
    try:
        shutil.copytree(
            src_dir, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".git", "__pycache__", "*.pyc")
        )
        with repo.git.custom_environment(**_git_env()):
            repo.git.add("--all")
            repo.git.commit("--allow-empty", "--no-gpg-sign", "-q", "-m", message or f"import {src_dir.name}")
        return repo.head.commit.hexsha
    finally:
        repo.close()


def file_url(path: Path) -> str:
    """The ``file://`` URL of a local repo (what an ImageKey carries)."""
    return Path(path).resolve().as_uri()
