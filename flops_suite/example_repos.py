"""Turns ``examples/ml_repos/*`` into git repositories the suite serves (same content, same commit)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

# Fixed identity and dates: identical content gives an identical commit, so images stay cached.
_GIT_ENV = {
    "GIT_AUTHOR_NAME": "FLOps examples",
    "GIT_AUTHOR_EMAIL": "examples@flops.invalid",
    "GIT_COMMITTER_NAME": "FLOps examples",
    "GIT_COMMITTER_EMAIL": "examples@flops.invalid",
    "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z",
    "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z",
}


def _git(repo: Path, *args: str) -> str:
    env = {**os.environ, **_GIT_ENV}
    out = subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env)
    return out.stdout.strip()


def publish_repo(source: Path, dest: Path) -> str:
    """Make ``dest`` a git repo whose ``main`` holds exactly ``source``; returns the commit."""
    if not (dest / ".git").is_dir():
        dest.mkdir(parents=True, exist_ok=True)
        _git(dest, "init", "-q", "-b", "main")
    for item in dest.iterdir():
        if item.name == ".git":
            continue
        shutil.rmtree(item) if item.is_dir() else item.unlink()
    shutil.copytree(
        source,
        dest,
        dirs_exist_ok=True,
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache"),
    )
    _git(dest, "add", "-A")
    if _git(dest, "status", "--porcelain"):
        _git(dest, "commit", "-q", "-m", f"{source.name} example")
    return _git(dest, "rev-parse", "HEAD")


def publish_examples(examples_dir: Path, dest_root: Path) -> dict[str, str]:
    """Publish every example ML repo; returns name -> commit."""
    return {
        src.name: publish_repo(src, dest_root / src.name)
        for src in sorted(examples_dir.iterdir())
        if src.is_dir() and (src / "model_manager.py").is_file()
    }
