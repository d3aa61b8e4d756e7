"""Paths of the broken-repo corpus (``tests/broken_repos``) and of the example repos."""

from __future__ import annotations

from pathlib import Path

BROKEN_REPOS = Path(__file__).resolve().parent.parent / "broken_repos"
EXAMPLES = Path(__file__).resolve().parent.parent.parent / "examples" / "ml_repos"


def corpus_repo(name: str) -> Path:
    """One repo of the corpus, e.g. ``valid_minimal`` or ``missing_method``."""
    path = BROKEN_REPOS / name
    if not path.is_dir():
        raise FileNotFoundError(path)
    return path
