"""prepare_app_dir: the user's repo becomes a Flower app whose components live in fl_actors."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from flwr.common.config import validate_config

from fl_actors import fab, run_config
from tests.unit.fl_actors_fakes import SKLEARN_REPO


def _load(path: Path) -> dict:
    with path.open("rb") as handle:
        return tomllib.load(handle)


def test_app_dir_holds_the_repo_and_a_valid_flower_config(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in ("model_manager.py", "data_manager.py", "requirements.txt"):
        (repo / name).write_text((SKLEARN_REPO / name).read_text())
    (repo / ".git").mkdir()
    (repo / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (repo / "pkg").mkdir()
    (repo / "pkg" / "util.py").write_text("X = 1\n")
    app = tmp_path / "app"

    fab.prepare_app_dir(repo, app, "My Project_42")

    assert sorted(p.name for p in app.iterdir()) == [
        "data_manager.py",
        "model_manager.py",
        "pkg",
        "pyproject.toml",
        "requirements.txt",
    ]
    config = _load(app / "pyproject.toml")
    assert config["project"]["name"] == "my-project-42"
    assert config["project"]["dependencies"] == ["scikit-learn", "numpy"]
    assert config["tool"]["flwr"]["app"]["components"] == {
        "serverapp": "fl_actors.server_app:app",
        "clientapp": "fl_actors.client_app:app",
    }
    assert config["tool"]["flwr"]["app"]["config"] == run_config.declared_config()
    # Flower's own check, which also resolves the components outside the app directory.
    valid, errors, _ = validate_config(config, check_module=True, project_dir=app)
    assert valid, errors


def test_repo_pyproject_is_kept_aside_and_its_dependencies_used(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "model_manager.py").write_text("class ModelManager: ...\n")
    (repo / "pyproject.toml").write_text(
        '[project]\nname = "user"\nversion = "0"\ndependencies = ["torch==2.13.0", "numpy>=1.26", "git+https://x/y"]\n'
    )
    app = tmp_path / "app"
    fab.prepare_app_dir(repo, app, "p")
    assert _load(app / fab.USER_PYPROJECT)["project"]["name"] == "user"
    assert _load(app / "pyproject.toml")["project"]["dependencies"] == ["torch==2.13.0", "numpy>=1.26"]


def test_requirements_skip_options_and_comments(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text(
        "# comment\n--find-links /opt/wheels\n-r other.txt\ntorch==2.13.0  # pinned\n\nnumpy\n"
    )
    assert fab.repo_requirements(tmp_path) == ["torch==2.13.0", "numpy"]


def test_a_repo_without_model_manager_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"model_manager\.py"):
        fab.prepare_app_dir(tmp_path, tmp_path / "app", "p")


@pytest.mark.parametrize(("given", "expected"), [("Digits", "digits"), ("42", "flops-42"), ("a__b--c", "a-b-c")])
def test_app_names_are_flower_safe(given: str, expected: str) -> None:
    assert fab.app_name(given) == expected
