"""The builder ships flops_utils (and datasets) only to repos that import it."""

from __future__ import annotations

from pathlib import Path

from flops_common.image_key import ImageKey
from flops_common.sla import ModelFlavor
from image_builder.actor_runtime import RUNTIME_PACKAGES
from image_builder.dependencies import normalize, resolve_dependencies
from image_builder.flops_utils_support import COMPAT_REQUIREMENTS, imports_flops_utils, runtime_packages
from tests.helpers.corpus import corpus_repo

KEY = ImageKey(repo_url="file:///r", commit="0" * 40, flavor=ModelFlavor.SKLEARN, platform="linux/amd64")


def _repo(tmp_path: Path, source: str) -> Path:
    (tmp_path / "data_manager.py").write_text(source, encoding="utf-8")
    (tmp_path / "requirements.txt").write_text("numpy\n", encoding="utf-8")
    return tmp_path


def test_from_import_is_detected(tmp_path: Path) -> None:
    repo = _repo(tmp_path, "from flops_utils.ml_repo_building_blocks import load_dataset\n")
    assert imports_flops_utils(repo)
    assert runtime_packages(repo) == (*RUNTIME_PACKAGES, "flops_utils")


def test_import_inside_a_function_is_detected(tmp_path: Path) -> None:
    assert imports_flops_utils(_repo(tmp_path, "def f():\n    import flops_utils.logging\n"))


def test_other_names_and_relative_imports_are_not(tmp_path: Path) -> None:
    repo = _repo(tmp_path, "import flops_utilsx\nfrom .flops_utils import x\n# import flops_utils\n")
    assert not imports_flops_utils(repo)
    assert runtime_packages(repo) == RUNTIME_PACKAGES


def test_repo_without_flops_utils_keeps_its_dependency_hash() -> None:
    deps = resolve_dependencies(corpus_repo("valid_minimal"), KEY, "src")
    assert deps.packages == RUNTIME_PACKAGES
    assert not any(r.startswith("datasets") for r in deps.requirements)


def test_repo_importing_flops_utils_gets_datasets_and_its_own_hash(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    plain = resolve_dependencies(_repo(tmp_path / "a", "import numpy\n"), KEY, "src")
    compat = resolve_dependencies(_repo(tmp_path / "b", "import flops_utils\n"), KEY, "src")
    assert set(compat.requirements) == {"numpy", *normalize(list(COMPAT_REQUIREMENTS))[0]}
    assert compat.packages == (*RUNTIME_PACKAGES, "flops_utils")
    assert compat.hash != plain.hash
