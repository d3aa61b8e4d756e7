"""Bytecode of actor runtimes: each shared module compiled once, and every module compiled."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from image_builder.venvs import adopt_bytecode, compile_bytecode, share_bytecode, site_packages


def _fake_env(root: Path) -> Path:
    """A directory shaped like a runtime, whose ``bin/python`` is this interpreter."""
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "python").symlink_to(sys.executable)
    site_packages(root).mkdir(parents=True)
    return root


def test_shared_modules_take_the_primary_bytecode_and_the_rest_is_compiled(tmp_path: Path) -> None:
    primary, other = _fake_env(tmp_path / "aggregator"), _fake_env(tmp_path / "learner")
    src, dst = site_packages(primary) / "pkg", site_packages(other) / "pkg"
    src.mkdir()
    dst.mkdir()
    (src / "linked.py").write_text("X = 1\n")
    os.link(src / "linked.py", dst / "linked.py")  # uv hard-links both envs to its cache
    (src / "copied.py").write_text("Y = 2\n")
    shutil.copy2(src / "copied.py", dst / "copied.py")  # same bytes, size and mtime
    (src / "changed.py").write_text("Z = 3\n")
    shutil.copy2(src / "changed.py", dst / "changed.py")
    (dst / "changed.py").write_text("Z = 4\n")  # same size, other bytes
    original = (src / "changed.py").stat()
    os.utime(dst / "changed.py", ns=(original.st_atime_ns, original.st_mtime_ns))
    (dst / "only_here.py").write_text("W = 5\n")
    (src / "broken.py").write_text("def (:\n")  # does not compile: skipped, not fatal
    (src / "tests").mkdir()
    (src / "tests" / "test_x.py").write_text("T = 1\n")  # never imported by an actor: not compiled

    compile_bytecode(primary, [other])

    tag = sys.implementation.cache_tag
    for name in ("linked", "copied"):
        assert (dst / "__pycache__" / f"{name}.{tag}.pyc").samefile(src / "__pycache__" / f"{name}.{tag}.pyc")
    changed = dst / "__pycache__" / f"changed.{tag}.pyc"
    assert changed.is_file() and not changed.samefile(src / "__pycache__" / f"changed.{tag}.pyc")
    assert (dst / "__pycache__" / f"only_here.{tag}.pyc").is_file()
    assert not (src / "__pycache__" / f"broken.{tag}.pyc").exists()
    assert not (src / "tests" / "__pycache__").exists()
    # The interpreter accepts the shared and the compiled bytecode: nothing is rewritten at import.
    code = "import pkg.linked, pkg.copied, pkg.changed, pkg.only_here; assert pkg.changed.Z == 4"
    before = {p: p.stat().st_mtime_ns for p in (dst / "__pycache__").iterdir()}
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={
            **{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
            "PYTHONPATH": str(site_packages(other)),
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert {p: p.stat().st_mtime_ns for p in (dst / "__pycache__").iterdir()} == before


def test_nothing_is_shared_into_an_env_without_the_module(tmp_path: Path) -> None:
    primary, other = _fake_env(tmp_path / "a"), _fake_env(tmp_path / "b")
    (site_packages(primary) / "alone.py").write_text("A = 1\n")
    compile_bytecode(primary)
    assert share_bytecode(primary, other) == 0
    assert not (site_packages(other) / "__pycache__").exists()


def test_an_equal_source_with_another_mtime_takes_a_restamped_copy(tmp_path: Path) -> None:
    donor, target = _fake_env(tmp_path / "donor"), _fake_env(tmp_path / "target")
    src, dst = site_packages(donor) / "pkg", site_packages(target) / "pkg"
    src.mkdir()
    dst.mkdir()
    (src / "same.py").write_text("S = 1\n")
    (dst / "same.py").write_text("S = 1\n")  # another unpack of the same wheel: equal bytes, other mtime
    os.utime(dst / "same.py", (1_600_000_000, 1_600_000_000))
    (src / "other.py").write_text("O = 1\n")
    (dst / "other.py").write_text("O = 2\n")  # same size, other bytes: compiled on its own
    compile_bytecode(donor)
    assert adopt_bytecode(site_packages(donor), site_packages(target)) == 1
    tag = sys.implementation.cache_tag
    adopted = dst / "__pycache__" / f"same.{tag}.pyc"
    assert not adopted.samefile(src / "__pycache__" / f"same.{tag}.pyc")
    assert not (dst / "__pycache__" / f"other.{tag}.pyc").exists()
    # The interpreter takes the restamped copy as it is.
    before = adopted.stat().st_mtime_ns
    done = subprocess.run(
        [sys.executable, "-c", "import pkg.same, pkg.other; assert pkg.other.O == 2"],
        env={
            **{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
            "PYTHONPATH": str(site_packages(target)),
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert adopted.stat().st_mtime_ns == before
