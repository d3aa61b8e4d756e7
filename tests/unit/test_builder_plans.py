"""Plan selection and the local registry's publication rules (atomic, concurrent-safe)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from flops_common.image_key import ImageKey, ImageManifest
from flops_common.jobs import BuildJob, BusConfig
from flops_common.local_layout import image_dir, manifest_path
from flops_common.sla import ModelFlavor
from image_builder.errors import BuildError
from image_builder.notify import Notifier
from image_builder.plans import LocalPlan, make_plan
from image_builder.publish import publish_local, published_manifest
from image_builder.steps import BuildStep
from image_builder.timing import StepRecorder
from image_builder.venvs import COMPLETE_MARKER
from image_builder.workspace import move_into_place, new_scratch, sweep_stale

KEY = ImageKey(repo_url="file:///srv/repo", commit="c" * 40, flavor=ModelFlavor.SKLEARN)


def _job(registry: Path, **update: object) -> BuildJob:
    job = BuildJob(project_id="p", bus=BusConfig(port=1), key=KEY, registry=str(registry))
    return job.model_copy(update=update)


def _recorder() -> StepRecorder:
    return StepRecorder(Notifier(BusConfig(port=1), "p"))


def test_local_plan_is_the_default(tmp_path: Path) -> None:
    assert isinstance(make_plan(_job(tmp_path), tmp_path, _recorder()), LocalPlan)


def test_unknown_plan_and_foreign_platform_are_refused(tmp_path: Path) -> None:
    with pytest.raises(BuildError) as info:
        make_plan(_job(tmp_path, plan="nix"), tmp_path, _recorder())
    assert info.value.cause == "build plan 'nix' is not available (known: local, oci)"
    with pytest.raises(BuildError) as info:  # the oci plan pushes to host:port, not into a directory
        make_plan(_job(tmp_path, plan="oci"), tmp_path, _recorder())
    assert "registry host:port" in info.value.cause
    arm = _job(tmp_path, key=KEY.model_copy(update={"platform": "linux/riscv64"}))
    with pytest.raises(BuildError) as info:
        make_plan(arm, tmp_path, _recorder())
    assert info.value.step is BuildStep.ENVIRONMENTS
    assert "not for linux/riscv64" in info.value.cause


def _runtime(path: Path) -> Path:
    (path / "bin").mkdir(parents=True)
    (path / "bin" / "python").write_text("")
    (path / COMPLETE_MARKER).write_text("{}")
    return path


def _staged(scratch: Path, root: Path, learner: Path, aggregator: Path) -> tuple[Path, ImageManifest]:
    staged = scratch / "image"
    (staged / "app").mkdir(parents=True)
    (staged / "app" / "model_manager.py").write_text("")
    manifest = ImageManifest(
        key=KEY,
        digest=KEY.digest,
        dependency_hash="d",
        learner=str(learner),
        aggregator=str(aggregator),
        app_dir=str(image_dir(root, KEY.digest) / "app"),
        created_at=time.time(),
    )
    return staged, manifest


def test_publish_is_whole_and_keeps_a_valid_image(tmp_path: Path) -> None:
    root = tmp_path / "registry"
    learner, aggregator = _runtime(tmp_path / "l"), _runtime(tmp_path / "a")
    scratch = new_scratch(root, KEY.digest)
    staged, manifest = _staged(scratch, root, learner, aggregator)
    assert published_manifest(root, KEY) is None
    assert publish_local(root, staged, manifest, scratch) == manifest
    assert published_manifest(root, KEY) == manifest
    assert json.loads(manifest_path(root, KEY.digest).read_text())["digest"] == KEY.digest
    # A second builder of the same key keeps the first image.
    scratch2 = new_scratch(root, KEY.digest)
    staged2, later = _staged(scratch2, root, learner, aggregator)
    assert publish_local(root, staged2, later.model_copy(update={"created_at": 1.0}), scratch2) == manifest


def test_publish_replaces_an_image_whose_runtimes_are_gone(tmp_path: Path) -> None:
    root = tmp_path / "registry"
    learner, aggregator = _runtime(tmp_path / "l"), _runtime(tmp_path / "a")
    scratch = new_scratch(root, KEY.digest)
    staged, manifest = _staged(scratch, root, learner, aggregator)
    publish_local(root, staged, manifest, scratch)
    (aggregator / COMPLETE_MARKER).unlink()
    assert published_manifest(root, KEY) is None
    new_aggregator = _runtime(tmp_path / "a2")
    staged2, rebuilt = _staged(new_scratch(root, KEY.digest), root, learner, new_aggregator)
    assert publish_local(root, staged2, rebuilt, staged2.parent) == rebuilt
    assert published_manifest(root, KEY) == rebuilt


def test_move_into_place_sets_an_incomplete_target_aside(tmp_path: Path) -> None:
    final = tmp_path / "envs" / "h" / "learner"
    (final / "half").mkdir(parents=True)
    staged = tmp_path / "staged"
    (staged / "bin").mkdir(parents=True)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    assert move_into_place(staged, final, scratch)
    assert (final / "bin").is_dir() and not (final / "half").exists()
    assert [p.name.startswith("stale-learner-") for p in scratch.iterdir()] == [True]


def test_sweep_removes_only_old_scratch(tmp_path: Path) -> None:
    old = new_scratch(tmp_path, "a" * 24)
    fresh = new_scratch(tmp_path, "b" * 24)
    os.utime(old, (time.time() - 7 * 3600, time.time() - 7 * 3600))
    assert sweep_stale(tmp_path) == [old]
    assert fresh.is_dir() and not old.exists()
