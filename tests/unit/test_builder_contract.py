"""Static contract check: each repo of the corpus gives exactly its cause."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from image_builder.contract import check_contract, contract_problems
from image_builder.errors import BuildError
from image_builder.steps import BuildStep
from tests.helpers.corpus import corpus_repo

NO_DEPS = (
    "no dependency file: add requirements.txt, pyproject.toml with [project.dependencies], "
    "or conda.yaml with dependencies"
)


@pytest.mark.parametrize(
    ("repo", "problems"),
    [
        ("valid_minimal", []),
        ("missing_model_manager", ["model_manager.py is missing at the repo root"]),
        ("no_model_manager_class", ["model_manager.py has no class ModelManager"]),
        ("missing_method", ["class ModelManager in model_manager.py lacks method(s): evaluate_model"]),
        ("syntax_error", ["model_manager.py line 31: SyntaxError: expected ':'"]),
        ("missing_data_manager_and_deps", ["data_manager.py is missing at the repo root", NO_DEPS]),
        # These pass the static check; later steps catch them.
        ("import_error", []),
        ("unsatisfiable_dependency", []),
        ("fit_raises", []),
    ],
)
def test_corpus_problems(repo: str, problems: list[str]) -> None:
    assert contract_problems(corpus_repo(repo)) == problems


def test_check_contract_raises_with_every_problem() -> None:
    with pytest.raises(BuildError) as info:
        check_contract(corpus_repo("missing_data_manager_and_deps"))
    assert info.value.step is BuildStep.CONTRACT
    assert info.value.cause == ("ML repo contract not met: data_manager.py is missing at the repo root; " + NO_DEPS)


def _repo(tmp_path: Path, model: str, data: str = "class DataManager:\n    pass\n") -> Path:
    shutil.copy(corpus_repo("valid_minimal") / "requirements.txt", tmp_path)
    (tmp_path / "model_manager.py").write_text(textwrap.dedent(model))
    (tmp_path / "data_manager.py").write_text(textwrap.dedent(data))
    return tmp_path


METHODS = """
    def set_model_data(self): ...
    def get_model(self): ...
    def get_model_parameters(self): ...
    def set_model_parameters(self, params): ...
    def fit_model(self): ...
    def evaluate_model(self): ...
"""


def test_methods_inherited_from_a_class_in_the_same_file(tmp_path: Path) -> None:
    model = "class Base:\n" + METHODS + "\nclass ModelManager(Base):\n    pass\n"
    assert contract_problems(_repo(tmp_path, model)) == []


def test_missing_methods_listed_in_contract_order(tmp_path: Path) -> None:
    model = "class ModelManager:\n    def get_model(self): ...\n    async def fit_model(self): ...\n"
    assert contract_problems(_repo(tmp_path, model)) == [
        "class ModelManager in model_manager.py lacks method(s): set_model_data, get_model_parameters, "
        "set_model_parameters, evaluate_model"
    ]


def test_imported_base_defers_methods_to_the_import_check(tmp_path: Path) -> None:
    model = "from somewhere import Base\n\nclass ModelManager(Base):\n    pass\n"
    assert contract_problems(_repo(tmp_path, model)) == []


def test_imported_or_aliased_class_counts(tmp_path: Path) -> None:
    assert contract_problems(_repo(tmp_path, "from impl import ModelManager\n")) == []
    aliased = "class Impl:\n" + METHODS + "\nModelManager = Impl\n"
    assert contract_problems(_repo(tmp_path, aliased)) == []
    bad_alias = "class Impl:\n    pass\n\nModelManager = Impl\n"
    assert contract_problems(_repo(tmp_path, bad_alias))[0].startswith("class ModelManager in model_manager.py")


def test_assigned_methods_count(tmp_path: Path) -> None:
    model = "def f(self): ...\n\nclass ModelManager:\n" + METHODS.replace(
        "    def fit_model(self): ...\n", "    fit_model = f\n"
    )
    assert contract_problems(_repo(tmp_path, model)) == []


def test_data_manager_problems(tmp_path: Path) -> None:
    model = "class ModelManager:\n" + METHODS
    assert contract_problems(_repo(tmp_path, model, "class Data:\n    pass\n")) == [
        "data_manager.py has no class DataManager"
    ]
    assert contract_problems(_repo(tmp_path, model, "x = (\n")) == [
        "data_manager.py line 1: SyntaxError: '(' was never closed"
    ]


def test_not_utf8(tmp_path: Path) -> None:
    repo = _repo(tmp_path, "class ModelManager:\n" + METHODS)
    (repo / "model_manager.py").write_bytes(b"\xff\xfe\x00bad")
    assert contract_problems(repo) == ["model_manager.py is not UTF-8 text"]
