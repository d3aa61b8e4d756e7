"""conda.yaml in both forms: a pip list, and conda-only dependencies mapped to PyPI."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from flops_common.image_key import ImageKey
from flops_common.sla import ModelFlavor
from image_builder.conda_deps import map_conda_dependencies, map_conda_spec
from image_builder.contract import contract_problems
from image_builder.dependencies import find_dependency_file, read_requirements, resolve_dependencies
from image_builder.errors import BuildError
from image_builder.steps import BuildStep

KEY = ImageKey(repo_url="file:///r", commit="0" * 40, flavor=ModelFlavor.SKLEARN, platform="linux/amd64")
# The conda.yaml of the addon's MNIST sklearn example (conda packages only, no pip list).
ADDON_SKLEARN_CONDA = """
name: mlflow-env
channels:
  - conda-forge
dependencies:
  - python=3.10.14
  - pip<=24.0
  - mlflow=2.12.1
  - cloudpickle=3.0.0
  - numpy=1.26.4
  - packaging=24.0
  - psutil=5.9.8
  - pyyaml=6.0.1
  - scikit-learn=1.4.2
  - scipy=1.13.0
"""


def _repo(tmp_path: Path, conda: str) -> Path:
    (tmp_path / "conda.yaml").write_text(textwrap.dedent(conda), encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize(
    ("spec", "requirement"),
    [
        ("numpy=1.26.4", "numpy==1.26.4.*"),
        ("numpy=1.26", "numpy==1.26.*"),
        ("numpy=1.26.*", "numpy==1.26.*"),
        ("numpy=1.26.4=py310h1234_0", "numpy==1.26.4.*"),
        ("scipy 1.13.0 py310_0", "scipy==1.13.0.*"),
        ("pandas>=2,<3", "pandas>=2,<3"),
        ("conda-forge::pytorch=2.1", "torch==2.1.*"),
        ("py-opencv", "opencv-python"),
        ("scikit-learn=1.4.2", "scikit-learn==1.4.2.*"),
        ("python=3.10.14", None),
        ("pip<=24.0", None),
    ],
)
def test_conda_specs_map_to_pypi(spec: str, requirement: str | None) -> None:
    assert map_conda_spec(spec)[1] == requirement


def test_conda_only_package_is_reported_by_name() -> None:
    mapping = map_conda_dependencies(["numpy", "cudatoolkit=11.8", "libgcc-ng", "a|b"])
    assert mapping.requirements == ["numpy"]
    assert mapping.unmappable == ["cudatoolkit", "libgcc-ng"]
    assert mapping.invalid and "'a|b'" in mapping.invalid[0]


def test_addon_conda_only_file_resolves_without_python_pip_or_mlflow(tmp_path: Path) -> None:
    repo = _repo(tmp_path, ADDON_SKLEARN_CONDA)
    assert find_dependency_file(repo) == repo / "conda.yaml"
    deps = resolve_dependencies(repo, KEY, "src")
    assert deps.source == "conda.yaml"
    assert deps.requirements == (
        "cloudpickle==3.0.0.*",
        "numpy==1.26.4.*",
        "packaging==24.0.*",
        "psutil==5.9.8.*",
        "pyyaml==6.0.1.*",
        "scikit-learn==1.4.2.*",
        "scipy==1.13.0.*",
    )
    assert deps.dropped == ("mlflow==2.12.1.*",)


def test_conda_packages_and_pip_list_are_merged(tmp_path: Path) -> None:
    repo = _repo(
        tmp_path,
        """
        dependencies:
          - python=3.11
          - pytorch=2.13
          - pip:
              - mlflow==2.12.1
              - tqdm==4.65.0
        """,
    )
    _, requirements = read_requirements(repo)
    assert requirements == ["torch==2.13.*", "mlflow==2.12.1", "tqdm==4.65.0"]


def test_unmappable_conda_package_fails_the_contract(tmp_path: Path) -> None:
    repo = _repo(tmp_path, "dependencies:\n  - numpy=1.26\n  - cudatoolkit=11.8\n")
    problems = contract_problems(repo)
    assert any("conda package(s) cudatoolkit have no PyPI equivalent" in p for p in problems), problems
    with pytest.raises(BuildError) as info:
        read_requirements(repo)
    assert info.value.step is BuildStep.DEPENDENCIES
    assert "cudatoolkit" in info.value.cause


def test_malformed_conda_entry_is_a_dependencies_failure(tmp_path: Path) -> None:
    repo = _repo(tmp_path, "dependencies:\n  - numpy\n  - {channel: x}\n")
    with pytest.raises(BuildError, match="neither a conda package nor a pip list"):
        read_requirements(repo)
