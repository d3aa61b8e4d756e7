"""The import check runs the repo's code in a runtime (here: the project's own interpreter)."""

from __future__ import annotations

import shutil
import sys
import textwrap
from pathlib import Path

import pytest

from image_builder.errors import BuildError
from image_builder.import_check import check_imports, check_imports_in
from image_builder.steps import BuildStep
from tests.helpers.corpus import corpus_repo

PYTHON = Path(sys.executable)


def _app(tmp_path: Path, repo: str) -> Path:
    app = tmp_path / "app"
    shutil.copytree(corpus_repo(repo), app)
    return app


def _cause(app: Path) -> str:
    with pytest.raises(BuildError) as info:
        check_imports(PYTHON, app)
    assert info.value.step is BuildStep.IMPORT_CHECK
    return info.value.cause


@pytest.mark.parametrize("repo", ["valid_minimal", "fit_raises"])
def test_valid_repos_pass(tmp_path: Path, repo: str) -> None:
    result = check_imports(PYTHON, _app(tmp_path, repo))
    assert result["ok"] is True
    assert result["parameters"] == 2
    assert result["shapes"] == [[4, 3], [3]]
    assert not list((tmp_path / "app").rglob("__pycache__"))  # the app stays as published


def test_import_error_names_the_exception_file_and_line(tmp_path: Path) -> None:
    assert _cause(_app(tmp_path, "import_error")) == (
        "importing model_manager failed: ModuleNotFoundError: No module named "
        "'flops_missing_helper_package' (model_manager.py line 4)"
    )


def _edit(app: Path, old: str, new: str) -> None:
    path = app / "model_manager.py"
    source = path.read_text()
    assert old in source
    path.write_text(source.replace(old, new))


def test_constructor_error(tmp_path: Path) -> None:
    app = _app(tmp_path, "valid_minimal")
    _edit(app, "        self.train = None\n", "        self.train = None\n        raise ValueError('no GPU')\n")
    assert _cause(app) == "ModelManager() failed: ValueError: no GPU (model_manager.py line 26)"


def test_parameters_must_be_a_list_of_arrays(tmp_path: Path) -> None:
    app = _app(tmp_path, "valid_minimal")
    _edit(app, "return [self.weights.copy(), self.bias.copy()]", "return {'w': self.weights}")
    assert _cause(app) == (
        "ModelManager().get_model_parameters() failed: returned dict, expected a list of numpy arrays"
    )
    _edit(app, "return {'w': self.weights}", "return [self.weights, 1.0]")
    assert _cause(app) == ("ModelManager().get_model_parameters() failed: element 1 is float, expected numpy.ndarray")


def test_error_inside_a_helper_module_points_at_it(tmp_path: Path) -> None:
    app = _app(tmp_path, "valid_minimal")
    (app / "helpers.py").write_text("VALUE = 1\nBROKEN = 1 / 0\n")
    _edit(app, "import numpy as np\n", "import numpy as np\nimport helpers\n")
    assert _cause(app) == "importing model_manager failed: ZeroDivisionError: division by zero (helpers.py line 2)"


def test_method_missing_at_runtime(tmp_path: Path) -> None:
    app = _app(tmp_path, "valid_minimal")
    _edit(app, "    def evaluate_model(self):", "    evaluate_model = None\n\n    def _evaluate(self):")
    assert _cause(app) == "ModelManager() failed: ModelManager() lacks callable method(s): evaluate_model"


def test_process_death_and_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOPS_MQTT_PASSWORD", "hunter2")
    app = _app(tmp_path, "valid_minimal")
    (app / "data_manager.py").write_text(
        textwrap.dedent(
            """
            import os, sys
            print("password:", os.environ.get("FLOPS_MQTT_PASSWORD"), file=sys.stderr)
            os._exit(3)
            """
        )
    )
    assert _cause(app) == "the import check exited with code 3 without a result: password: None"


def test_several_runtimes_at_once_name_the_failing_one(tmp_path: Path) -> None:
    app = _app(tmp_path, "valid_minimal")
    results = check_imports_in({"learner": PYTHON, "aggregator": PYTHON}, app)
    assert set(results) == {"learner", "aggregator"}
    assert not list(app.rglob("__pycache__"))  # bytecode is kept in the runtime, not in the app
    broken = _app(tmp_path / "b", "import_error")
    with pytest.raises(BuildError) as info:
        check_imports_in({"learner": PYTHON, "aggregator": PYTHON}, broken)
    assert info.value.cause.startswith("importing model_manager failed: ModuleNotFoundError")
