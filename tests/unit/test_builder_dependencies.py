"""Dependency files: which one is read, how it is normalized, what the hash depends on."""

from __future__ import annotations

import re
import shutil
import textwrap
from pathlib import Path

import pytest

from flops_common.image_key import ACTOR_RUNTIME_VERSION, ImageKey
from flops_common.sla import ModelFlavor
from image_builder import actor_runtime
from image_builder.actor_runtime import MLFLOW_VERSION
from image_builder.dependencies import (
    dependency_hash,
    find_dependency_file,
    normalize,
    read_requirements,
    resolve_dependencies,
)
from image_builder.errors import BuildError
from image_builder.steps import BuildStep
from image_builder.uv_tool import failure_summary
from tests.helpers.corpus import corpus_repo

KEY = ImageKey(repo_url="https://example.invalid/r.git", commit="a" * 40, flavor=ModelFlavor.SKLEARN)
UV_LOCK = Path(__file__).resolve().parents[2] / "uv.lock"


def _write(repo: Path, name: str, text: str) -> Path:
    path = repo / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def test_requirements_txt_is_normalized(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "requirements.txt",
        """
        # a comment
        NumPy>=1.24  # trailing comment
        scikit_learn[Alldeps] ==1.5.*
        torch ; python_version >= "3.10"
        pandas==2.2.2 \\
            --hash=sha256:0123456789abcdef
        numpy>=1.24
        my-pkg @ https://example.invalid/my_pkg-1.0-py3-none-any.whl#sha256=00
        """,
    )
    source, raw = read_requirements(tmp_path)
    assert source == "requirements.txt"
    kept, dropped = normalize(raw)
    assert kept == [
        "my-pkg@ https://example.invalid/my_pkg-1.0-py3-none-any.whl#sha256=00",
        "numpy>=1.24",
        "pandas==2.2.2",
        "scikit-learn[alldeps]==1.5.*",
        'torch; python_version >= "3.10"',
    ]
    assert dropped == []


def test_include_inside_the_repo(tmp_path: Path) -> None:
    _write(tmp_path, "requirements.txt", "-r reqs/base.txt\nscipy\n")
    _write(tmp_path, "reqs/base.txt", "numpy\n")
    assert read_requirements(tmp_path) == ("requirements.txt", ["numpy", "scipy"])


@pytest.mark.parametrize(
    ("line", "cause"),
    [
        ("-r ../outside.txt", "requirements.txt line 2: included file '../outside.txt' is not a file in the repo"),
        (
            "--extra-index-url https://example.invalid/simple",
            "requirements.txt line 2: pip option '--extra-index-url' is not supported; list plain requirements",
        ),
        ("-e .", "requirements.txt line 2: pip option '-e' is not supported; list plain requirements"),
        ("./local_pkg", "requirements.txt line 2: local path './local_pkg' is not supported"),
        ("numpy>>1", "requirements.txt line 2: 'numpy>>1' is not a valid requirement"),
    ],
)
def test_refused_requirement_lines(tmp_path: Path, line: str, cause: str) -> None:
    _write(tmp_path, "requirements.txt", f"numpy\n{line}\n")
    with pytest.raises(BuildError) as info:
        read_requirements(tmp_path)
    assert info.value.step is BuildStep.DEPENDENCIES
    assert info.value.cause.startswith(cause)


def test_pyproject_dependencies(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "pyproject.toml",
        """
        [project]
        name = "x"
        dependencies = ["numpy", "scikit-learn>=1.3"]
        """,
    )
    assert read_requirements(tmp_path) == ("pyproject.toml", ["numpy", "scikit-learn>=1.3"])


def test_pyproject_without_dependencies_falls_through_to_conda(tmp_path: Path) -> None:
    _write(tmp_path, "pyproject.toml", "[tool.ruff]\nline-length = 100\n")
    _write(
        tmp_path,
        "conda.yaml",
        """
        name: anchor-example
        channels: [conda-forge]
        dependencies:
          - python=3.10
          - pip<=23.2
          - pip:
              - mlflow==2.9.2
              - scikit-learn
              - numpy
        """,
    )
    assert find_dependency_file(tmp_path) == tmp_path / "conda.yaml"
    deps = resolve_dependencies(tmp_path, KEY, "src")
    assert deps.source == "conda.yaml"
    assert deps.requirements == ("numpy", "scikit-learn")
    assert deps.dropped == ("mlflow==2.9.2",)


def test_requirements_txt_wins(tmp_path: Path) -> None:
    _write(tmp_path, "pyproject.toml", '[project]\nname = "x"\ndependencies = ["scipy"]\n')
    _write(tmp_path, "requirements.txt", "numpy\n")
    assert find_dependency_file(tmp_path) == tmp_path / "requirements.txt"


def test_conda_without_dependencies_is_no_dependency_file(tmp_path: Path) -> None:
    _write(tmp_path, "conda.yaml", "name: empty\ndependencies: []\n")
    assert find_dependency_file(tmp_path) is None
    with pytest.raises(BuildError, match="no dependency file"):
        read_requirements(tmp_path)


@pytest.mark.parametrize(
    ("name", "text", "cause"),
    [
        ("pyproject.toml", "[project\n", "pyproject.toml is not valid TOML: "),
        ("pyproject.toml", "[project]\ndependencies = 'numpy'\n", "pyproject.toml: [project.dependencies] must be"),
        ("conda.yaml", "dependencies: [\n", "conda.yaml: invalid YAML: "),
    ],
)
def test_unparsable_dependency_files(tmp_path: Path, name: str, text: str, cause: str) -> None:
    _write(tmp_path, name, text)
    assert find_dependency_file(tmp_path) == tmp_path / name
    with pytest.raises(BuildError) as info:
        read_requirements(tmp_path)
    assert info.value.cause.startswith(cause)


def test_corpus_dependencies() -> None:
    deps = resolve_dependencies(corpus_repo("valid_minimal"), KEY, "src")
    assert (deps.source, deps.requirements, deps.dropped) == ("requirements.txt", ("numpy",), ())
    assert len(deps.hash) == 24
    # A code-only change keeps the hash: the runtimes are reused.
    assert resolve_dependencies(corpus_repo("fit_raises"), KEY, "src").hash == deps.hash
    assert resolve_dependencies(corpus_repo("unsatisfiable_dependency"), KEY, "src").hash != deps.hash


def test_hash_depends_on_what_a_runtime_is_built_from() -> None:
    base = dependency_hash(["numpy", "scipy"], KEY, "src")
    assert dependency_hash(["scipy", "numpy"], KEY, "src") == base
    assert dependency_hash(normalize(["SciPy", "numpy", "numpy"])[0], KEY, "src") == base
    assert dependency_hash(["numpy"], KEY, "src") != base
    assert dependency_hash(["numpy", "scipy"], KEY, "other-src") != base
    pytorch = KEY.model_copy(update={"flavor": ModelFlavor.PYTORCH})
    assert dependency_hash(["numpy", "scipy"], pytorch, "src") != base
    arm = KEY.model_copy(update={"platform": "linux/arm64"})
    assert dependency_hash(["numpy", "scipy"], arm, "src") != base
    # The commit is not part of it.
    other_commit = KEY.model_copy(update={"commit": "b" * 40})
    assert dependency_hash(["numpy", "scipy"], other_commit, "src") == base


def test_mlflow_client_matches_the_lock_file() -> None:
    locked = re.search(r'name = "mlflow"\nversion = "([^"]+)"', UV_LOCK.read_text())
    assert locked is not None
    assert locked.group(1) == MLFLOW_VERSION


@pytest.mark.parametrize(
    "output",
    [
        "Using Python 3.11.7 environment at: /x\nerror: No solution found when resolving dependencies\n"
        "  cause: Because only numpy<=2.5.5 is available and you require numpy>=1000, we can conclude "
        "that your requirements are unsatisfiable.\n",
        "  \u00d7 No solution found when resolving dependencies:\n  \u2570\u2500\u25b6 Because only "
        "numpy<=2.5.5 is available and you require numpy>=1000, we can conclude that your requirements "
        "are unsatisfiable.\n\n      hint: something long\n",
    ],
)
def test_resolver_message_is_quoted_short(output: str) -> None:
    assert failure_summary(output) == (
        "No solution found when resolving dependencies: Because only numpy<=2.5.5 is available and you "
        "require numpy>=1000, we can conclude that your requirements are unsatisfiable."
    )


def test_other_uv_errors_keep_their_error_lines() -> None:
    output = "Resolved 3 packages\nerror: Failed to fetch: `https://x`\n  Caused by: connection refused\n"
    assert failure_summary(output) == "error: Failed to fetch: `https://x` Caused by: connection refused"


def test_the_managers_image_key_changes_with_the_actors_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An image built with older actor code is never a cache hit for newer FLOps (its jobs would not parse)."""
    current = actor_runtime.actor_runtime_id()
    assert current == f"{ACTOR_RUNTIME_VERSION}-{actor_runtime.runtime_source_hash()[:16]}"
    changed = tmp_path / "fl_actors"
    shutil.copytree(actor_runtime.package_dir("fl_actors"), changed)
    (changed / "jobs_changed.py").write_text("NEW_FIELD = 1\n")
    original = actor_runtime.package_dir
    monkeypatch.setattr(actor_runtime, "package_dir", lambda name: changed if name == "fl_actors" else original(name))
    assert actor_runtime.runtime_source_hash()[:16] != current.split("-", 1)[1]
