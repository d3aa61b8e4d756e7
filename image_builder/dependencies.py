"""Reads a repo's dependency list, normalizes it and hashes it with everything else a runtime depends on.

Sources, first found wins: ``requirements.txt``; ``pyproject.toml`` ``[project.dependencies]``;
``conda.yaml`` / ``conda.yml`` — its conda packages mapped to PyPI (:mod:`image_builder.conda_deps`)
plus the ``pip:`` list under ``dependencies:``. A repo that imports ``flops_utils`` (the Oakestra FLOps
addon's library) gets FLOps' own ``flops_utils`` and what it needs (:mod:`image_builder.flops_utils_support`).
"""

from __future__ import annotations

import hashlib
import json
import platform
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from flops_common.image_key import ACTOR_RUNTIME_VERSION, ImageKey
from image_builder.actor_runtime import MLFLOW_DISTRIBUTIONS, RUNTIME_PACKAGES, aggregator_requirements
from image_builder.conda_deps import CondaMapping, map_conda_dependencies
from image_builder.errors import BuildError
from image_builder.flops_utils_support import compat_requirements, runtime_packages
from image_builder.steps import BuildStep

REQUIREMENTS_TXT = "requirements.txt"
PYPROJECT = "pyproject.toml"
CONDA_FILES = ("conda.yaml", "conda.yml")
DEPENDENCY_FILES_HINT = "requirements.txt, pyproject.toml with [project.dependencies], or conda.yaml with dependencies"
MAX_INCLUDE_DEPTH = 5
_HASH_OPTION = re.compile(r"\s--hash[=\s]\S+")
_COMMENT = re.compile(r"(^|\s)#.*$")


@dataclass(frozen=True)
class Dependencies:
    """The repo's dependencies as the runtimes install them, and the hash runtimes are keyed by."""

    source: str  # the file they came from
    requirements: tuple[str, ...]  # normalized, sorted PEP 508 requirements
    dropped: tuple[str, ...]  # requirements left out (MLflow: only the aggregator has its own client)
    hash: str
    packages: tuple[str, ...] = RUNTIME_PACKAGES  # FLOps packages the runtimes carry (flops_utils if imported)


def _pyproject_dependencies(path: Path) -> list[str] | None:
    """[project.dependencies] of a pyproject.toml; None if absent. Raises ValueError on bad TOML."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    deps = data.get("project", {}).get("dependencies")
    if deps is None:
        return None
    if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
        raise ValueError("[project.dependencies] must be a list of strings")
    return list(deps)


def _conda_lists(path: Path) -> tuple[list[str], list[str]] | None:
    """The conda specs and the pip list under ``dependencies:`` of a conda file; None if it has no
    dependencies. ValueError on bad YAML or a malformed entry."""
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ValueError(f"invalid YAML: {str(exc).splitlines()[0]}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("dependencies"), list) or not data["dependencies"]:
        return None
    conda: list[str] = []
    pip: list[str] = []
    for entry in data["dependencies"]:
        if isinstance(entry, dict) and "pip" in entry:
            listed = entry["pip"]
            if not isinstance(listed, list) or not all(isinstance(d, str) for d in listed):
                raise ValueError("the pip entry under dependencies must be a list of strings")
            pip.extend(listed)
        elif isinstance(entry, str | int | float):
            conda.append(str(entry))
        else:
            raise ValueError(f"dependencies entry {entry!r} is neither a conda package nor a pip list")
    return conda, pip


def _conda_mapping(path: Path) -> tuple[CondaMapping, list[str]]:
    """The conda specs of a conda file mapped to PyPI, and its pip list (ValueError as above)."""
    lists = _conda_lists(path)
    conda, pip = lists if lists is not None else ([], [])
    return map_conda_dependencies(conda), pip


def conda_problems(repo_dir: Path) -> list[str]:
    """Contract problems of the repo's conda file: conda packages FLOps cannot install from PyPI."""
    path = find_dependency_file(repo_dir)
    if path is None or path.name not in CONDA_FILES:
        return []
    try:
        mapping, _ = _conda_mapping(path)
    except (ValueError, UnicodeDecodeError):
        return []  # the dependencies step reports the parse error
    problems = []
    if mapping.unmappable:
        problems.append(
            f"{path.name}: conda package(s) {', '.join(mapping.unmappable)} have no PyPI equivalent; "
            "remove them or list PyPI packages under pip:"
        )
    if mapping.invalid:
        problems.append(f"{path.name}: cannot read conda spec(s) {', '.join(mapping.invalid)}")
    return problems


def find_dependency_file(repo_dir: Path) -> Path | None:
    """The dependency file the build uses, or None if the repo has none.

    A pyproject.toml or conda file counts if it declares dependencies — or cannot be parsed, so that
    the dependencies step reports the parse error instead of a missing file.
    """
    if (repo_dir / REQUIREMENTS_TXT).is_file():
        return repo_dir / REQUIREMENTS_TXT
    candidates: list[tuple[Path, Callable[[Path], object | None]]] = [(repo_dir / PYPROJECT, _pyproject_dependencies)]
    candidates += [(repo_dir / name, _conda_lists) for name in CONDA_FILES]
    return next((path for path, declared in candidates if _counts(path, declared)), None)


def _counts(path: Path, declared: Callable[[Path], object | None]) -> bool:
    """Whether ``path`` is a dependency file that declares dependencies or cannot be parsed."""
    if not path.is_file():
        return False
    try:
        return declared(path) is not None
    except (ValueError, UnicodeDecodeError):
        return True


def _fail(cause: str) -> BuildError:
    return BuildError(BuildStep.DEPENDENCIES, cause)


def parse_requirement_lines(lines: list[str], where: str, repo_dir: Path | None = None, depth: int = 0) -> list[str]:
    """PEP 508 requirements from pip-style lines; ``-r FILE`` includes files inside ``repo_dir``.

    Other pip options (indexes, find-links, editables) and local paths are refused: the platform
    chooses the indexes, and a runtime must not depend on files outside the published image.
    """
    found: list[str] = []
    pending = ""
    for number, raw in enumerate(lines, start=1):
        line = pending + raw.rstrip("\n")
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        pending = ""
        line = _HASH_OPTION.sub("", _COMMENT.sub("", line)).strip()
        if not line:
            continue
        if line.startswith(("-r ", "--requirement ", "-r\t", "--requirement=")):
            found.extend(_include(line, where, number, repo_dir, depth))
            continue
        if line.startswith("-"):
            option = line.split()[0].split("=")[0]
            raise _fail(f"{where} line {number}: pip option {option!r} is not supported; list plain requirements")
        if line.startswith((".", "/", "~")) or line.startswith("file:"):
            raise _fail(f"{where} line {number}: local path {line!r} is not supported")
        try:
            Requirement(line)
        except InvalidRequirement as exc:
            detail = str(exc).splitlines()[0]
            raise _fail(f"{where} line {number}: {line!r} is not a valid requirement ({detail})") from None
        found.append(line)
    return found


def _include(line: str, where: str, number: int, repo_dir: Path | None, depth: int) -> list[str]:
    target = line.split("=", 1)[1] if line.startswith("--requirement=") else line.split(None, 1)[1]
    target = target.strip()
    if repo_dir is None:
        raise _fail(f"{where} line {number}: includes are not supported here")
    if depth >= MAX_INCLUDE_DEPTH:
        raise _fail(f"{where} line {number}: includes nest deeper than {MAX_INCLUDE_DEPTH}")
    path = (repo_dir / target).resolve()
    if not path.is_relative_to(repo_dir.resolve()) or not path.is_file():
        raise _fail(f"{where} line {number}: included file {target!r} is not a file in the repo")
    lines = path.read_text(encoding="utf-8").splitlines()
    return parse_requirement_lines(lines, target, repo_dir, depth + 1)


def read_requirements(repo_dir: Path) -> tuple[str, list[str]]:
    """The dependency file's name and its raw requirement strings."""
    path = find_dependency_file(repo_dir)
    if path is None:
        raise _fail(f"no dependency file: add {DEPENDENCY_FILES_HINT}")
    name = path.name
    try:
        if name == REQUIREMENTS_TXT:
            lines = path.read_text(encoding="utf-8").splitlines()
            return name, parse_requirement_lines(lines, name, repo_dir)
        if name == PYPROJECT:
            try:
                deps = _pyproject_dependencies(path)
            except tomllib.TOMLDecodeError as exc:
                raise _fail(f"{name} is not valid TOML: {exc}") from None
            except ValueError as exc:
                raise _fail(f"{name}: {exc}") from None
            return name, parse_requirement_lines(deps or [], f"{name} [project.dependencies] entry")
        try:
            mapping, pip = _conda_mapping(path)
        except ValueError as exc:
            raise _fail(f"{name}: {exc}") from None
        if mapping.unmappable or mapping.invalid:
            raise _fail("; ".join(conda_problems(repo_dir)))
        return name, [*mapping.requirements, *parse_requirement_lines(pip, f"{name} pip list entry")]
    except UnicodeDecodeError:
        raise _fail(f"{name} is not UTF-8 text") from None


def normalize(requirements: list[str]) -> tuple[list[str], list[str]]:
    """Canonical, sorted, de-duplicated requirements; and the MLflow ones that were dropped."""
    kept: set[str] = set()
    dropped: set[str] = set()
    for text in requirements:
        req = Requirement(text)
        req.name = canonicalize_name(req.name)
        req.extras = {canonicalize_name(e) for e in req.extras}
        (dropped if req.name in MLFLOW_DISTRIBUTIONS else kept).add(str(req))
    return sorted(kept), sorted(dropped)


def python_version() -> str:
    """The interpreter every runtime is built with: the builder's own."""
    return f"{platform.python_implementation()}-{platform.python_version()}"


def dependency_hash(
    requirements: list[str], key: ImageKey, runtime_source_hash: str, packages: tuple[str, ...] = RUNTIME_PACKAGES
) -> str:
    """sha256 (24 hex digits) of everything a runtime depends on besides the repo's code."""
    payload: dict[str, object] = {
        "requirements": sorted(requirements),
        "flavor": key.flavor.value,
        "platform": key.platform,
        "runtime": ACTOR_RUNTIME_VERSION,
        "python": python_version(),
        "actor_requirements": list(aggregator_requirements(key.flavor.value)),
        "runtime_source": runtime_source_hash,
    }
    if packages != RUNTIME_PACKAGES:  # keeps the hashes of runtimes without flops_utils as they were
        payload["packages"] = list(packages)
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]


def resolve_dependencies(repo_dir: Path, key: ImageKey, runtime_source_hash: str) -> Dependencies:
    """Read, normalize and hash the repo's dependencies (raises BuildError(DEPENDENCIES))."""
    source, raw = read_requirements(repo_dir)
    kept, dropped = normalize([*raw, *compat_requirements(repo_dir)])
    packages = runtime_packages(repo_dir)
    return Dependencies(
        source=source,
        requirements=tuple(kept),
        dropped=tuple(dropped),
        hash=dependency_hash(kept, key, runtime_source_hash, packages),
        packages=packages,
    )
