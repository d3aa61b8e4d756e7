"""Repos written for the Oakestra FLOps addon import ``flops_utils``: FLOps ships its own package of that
name (top-level ``flops_utils/``) into a repo's runtimes, with the libraries it needs, only when the
repo imports it. Detection is static (``ast``): the repo is not executed here.
"""

from __future__ import annotations

import ast
from pathlib import Path

from image_builder.actor_runtime import COMPAT_PACKAGE, RUNTIME_PACKAGES

# load_dataset returns a Hugging Face datasets.Dataset. The addon's repos index its columns as numpy
# arrays (dataset["image"].reshape(...)); datasets 4 returns lazy Column objects there instead.
COMPAT_REQUIREMENTS = ("datasets>=2.19,<4",)
MAX_SCANNED_BYTES = 5_000_000
_SKIPPED_DIRS = {".git", "__pycache__", ".venv", "venv", "node_modules"}


def _python_files(repo_dir: Path) -> list[Path]:
    files = []
    for path in sorted(repo_dir.rglob("*.py")):
        relative = path.relative_to(repo_dir).parts
        if any(part in _SKIPPED_DIRS or part.startswith(".") for part in relative[:-1]):
            continue
        if path.is_file() and path.stat().st_size <= MAX_SCANNED_BYTES:
            files.append(path)
    return files


def _imports_package(tree: ast.AST, package: str) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == package for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == package:
            return True
    return False


def imports_flops_utils(repo_dir: Path) -> bool:
    """Whether any Python file of the repo imports ``flops_utils`` (files that do not parse are skipped:
    the contract check reports those it needs)."""
    for path in _python_files(repo_dir):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        except (SyntaxError, ValueError, UnicodeDecodeError):
            continue
        if _imports_package(tree, COMPAT_PACKAGE):
            return True
    return False


def runtime_packages(repo_dir: Path) -> tuple[str, ...]:
    """The FLOps packages a runtime for this repo carries: ``flops_utils`` too if the repo imports it."""
    return (*RUNTIME_PACKAGES, COMPAT_PACKAGE) if imports_flops_utils(repo_dir) else RUNTIME_PACKAGES


def compat_requirements(repo_dir: Path) -> tuple[str, ...]:
    """What the repo's runtimes install besides its own dependencies for ``flops_utils``."""
    return COMPAT_REQUIREMENTS if imports_flops_utils(repo_dir) else ()
