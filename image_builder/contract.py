"""Static check of the ML repo contract with ``ast``: nothing of the repo is executed here.

The repo root must hold ``model_manager.py`` with class ``ModelManager`` and its six methods,
``data_manager.py`` with class ``DataManager``, and a dependency file. Every problem is listed.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

from image_builder.dependencies import DEPENDENCY_FILES_HINT, conda_problems, find_dependency_file
from image_builder.errors import BuildError

# The probe runs inside the built runtime without image_builder: the method list lives there.
from image_builder.probe import REQUIRED_METHODS
from image_builder.steps import BuildStep

MODEL_FILE = "model_manager.py"
MODEL_CLASS = "ModelManager"
DATA_FILE = "data_manager.py"
DATA_CLASS = "DataManager"
MAX_SOURCE_BYTES = 5_000_000


@dataclass
class _ClassInfo:
    """What ``ast`` tells about one class: its own members and whether more may come from elsewhere."""

    members: set[str] = field(default_factory=set)
    open_ended: bool = False  # bases, decorators or an import we cannot follow statically


def _parse(path: Path, name: str) -> tuple[ast.Module | None, str | None]:
    """The module tree, or a problem naming the file (and the line of a syntax error)."""
    if not path.is_file():
        return None, f"{name} is missing at the repo root"
    if path.stat().st_size > MAX_SOURCE_BYTES:
        return None, f"{name} is larger than {MAX_SOURCE_BYTES // 1_000_000} MB"
    try:
        source = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return None, f"{name} is not UTF-8 text"
    try:
        return ast.parse(source, filename=name), None
    except SyntaxError as exc:
        return None, f"{name} line {exc.lineno}: SyntaxError: {exc.msg}"
    except ValueError as exc:  # e.g. null bytes
        return None, f"{name}: {exc}"


def _top_level(statements: list[ast.stmt]) -> list[ast.stmt]:
    """Module-level statements, looking into ``if``/``try`` blocks."""
    flat: list[ast.stmt] = []
    for node in statements:
        flat.append(node)
        if isinstance(node, ast.If):
            flat.extend(_top_level(node.body) + _top_level(node.orelse))
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody, *[h.body for h in node.handlers]):
                flat.extend(_top_level(block))
    return flat


def _class_members(node: ast.ClassDef) -> set[str]:
    names: set[str] = set()
    for stmt in _top_level(node.body):
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(stmt.name)
        elif isinstance(stmt, ast.Assign):
            names.update(t.id for t in stmt.targets if isinstance(t, ast.Name))
        elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            names.add(stmt.target.id)
    return names


class _Module:
    """Module-level names of one file: classes, imports and aliases."""

    def __init__(self, tree: ast.Module) -> None:
        self.classes: dict[str, ast.ClassDef] = {}
        self.imported: set[str] = set()
        self.aliases: dict[str, ast.expr] = {}
        for stmt in _top_level(tree.body):
            if isinstance(stmt, ast.ClassDef):
                self.classes[stmt.name] = stmt
            elif isinstance(stmt, ast.Import | ast.ImportFrom):
                for alias in stmt.names:
                    self.imported.add(alias.asname or alias.name.split(".")[0])
            elif isinstance(stmt, ast.Assign):
                for target in stmt.targets:
                    if isinstance(target, ast.Name):
                        self.aliases[target.id] = stmt.value

    def defines(self, name: str) -> bool:
        return name in self.classes or name in self.imported or name in self.aliases

    def describe(self, name: str, seen: frozenset[str] = frozenset()) -> _ClassInfo | None:
        """The members of class ``name`` including same-file bases; None if the name is not bound."""
        if name in seen:
            return _ClassInfo(open_ended=True)
        seen = seen | {name}
        if name in self.classes:
            node = self.classes[name]
            info = _ClassInfo(members=_class_members(node), open_ended=bool(node.decorator_list))
            for base in node.bases:
                if isinstance(base, ast.Name) and base.id == "object":
                    continue
                base_info = self.describe(base.id, seen) if isinstance(base, ast.Name) else None
                if base_info is None:
                    info.open_ended = True
                else:
                    info.members |= base_info.members
                    info.open_ended |= base_info.open_ended
            return info
        if name in self.aliases:
            value = self.aliases[name]
            if isinstance(value, ast.Name):
                return self.describe(value.id, seen) or _ClassInfo(open_ended=True)
            return _ClassInfo(open_ended=True)
        if name in self.imported:
            return _ClassInfo(open_ended=True)
        return None


def contract_problems(repo_dir: Path) -> list[str]:
    """Every way the repo at ``repo_dir`` misses the ML repo contract; empty when it is met.

    Methods that may come from an imported base class cannot be seen statically: the import check
    in the built learner runtime verifies them.
    """
    problems: list[str] = []
    tree, problem = _parse(repo_dir / MODEL_FILE, MODEL_FILE)
    if problem:
        problems.append(problem)
    elif tree is not None:
        info = _Module(tree).describe(MODEL_CLASS)
        if info is None:
            problems.append(f"{MODEL_FILE} has no class {MODEL_CLASS}")
        elif not info.open_ended:
            missing = [m for m in REQUIRED_METHODS if m not in info.members]
            if missing:
                problems.append(f"class {MODEL_CLASS} in {MODEL_FILE} lacks method(s): {', '.join(missing)}")
    tree, problem = _parse(repo_dir / DATA_FILE, DATA_FILE)
    if problem:
        problems.append(problem)
    elif tree is not None and not _Module(tree).defines(DATA_CLASS):
        problems.append(f"{DATA_FILE} has no class {DATA_CLASS}")
    if find_dependency_file(repo_dir) is None:
        problems.append(f"no dependency file: add {DEPENDENCY_FILES_HINT}")
    problems.extend(conda_problems(repo_dir))
    return problems


def check_contract(repo_dir: Path) -> None:
    """Raise BuildError(CONTRACT) listing exactly what the repo misses."""
    problems = contract_problems(repo_dir)
    if problems:
        raise BuildError(BuildStep.CONTRACT, "ML repo contract not met: " + "; ".join(problems))
