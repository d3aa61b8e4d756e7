"""Stage 6 (post-training) of the project state machine, over fake boundaries: the registered version,
the serving build, the inference service that outlives its project, restarts, stop and cancel."""

from __future__ import annotations

from typing import Any

from flops_common.events import EventKind, Source, make_event
from flops_common.serving import ServingManifest
from flops_common.sla import PostTrainingStep
from flops_common.stages import ProjectStatus, Stage
from flops_manager.api.schemas import public_view
from flops_manager.orchestrator.base import ServiceRole
from flops_manager.projects.context import OBSERVER_GRACE_S
from flops_manager.projects.health import EXIT_GRACE_S
from tests.unit.conftest import HarnessFactory
from tests.unit.engine_fakes import Harness, manifest_for, sla

BOTH = [PostTrainingStep.BUILD_IMAGE_FOR_TRAINED_MODEL, PostTrainingStep.DEPLOY_TRAINED_MODEL_IMAGE]
MODEL = {"name": "flops-alice-digits_sklearn", "version": "3", "uri": "models:/flops-alice-digits_sklearn/3"}


def submit(h: Harness, steps: list[PostTrainingStep]) -> str:
    project = h.engine.submit(sla().model_copy(update={"post_training_steps": steps}), "alice")
    h.drain()
    return project.id


def train(h: Harness, pid: str, **registration: Any) -> None:
    """Stages 1-5 through to TRAINING_SUCCEEDED with ``registration`` in its data."""
    h.send(pid, Source.OBSERVER, EventKind.LOG, "observer ready", observer_ready=True)
    h.send(pid, Source.BUILDER, EventKind.BUILD_SUCCEEDED, "built", manifest=manifest_for(h.key(pid)).model_dump())
    h.send(pid, Source.AGGREGATOR, EventKind.TRAINING_STARTED, "run 7", run_id=7)
    h.training_succeeded(pid, **registration)


def serving_manifest() -> dict[str, Any]:
    return ServingManifest(
        model=MODEL,  # type: ignore[arg-type]
        flavor="sklearn",  # type: ignore[arg-type]
        artifact="/registry/serving/envs/abc",
        model_dir="/registry/serving/models/m/3/model",
        dependency_hash="abc",
        created_at=0.0,
    ).model_dump(mode="json")


def built(h: Harness, pid: str) -> None:
    h.send(pid, Source.BUILDER, EventKind.SERVING_BUILD_SUCCEEDED, "built", serving=serving_manifest())


def ready(h: Harness, pid: str) -> None:
    h.send(pid, Source.INFERENCE, EventKind.INFERENCE_READY, "answering", url="http://127.0.0.1:1", seconds=1.5)


def serving(h: Harness, steps: list[PostTrainingStep] = BOTH) -> str:
    """A project that ended with its inference service answering."""
    pid = submit(h, steps)
    train(h, pid, registered_model=MODEL)
    built(h, pid)
    ready(h, pid)
    return pid


def trail(h: Harness, pid: str) -> list[tuple[int, str]]:
    return [(int(r.stage), r.status) for r in h.project(pid).stages]


def test_registration_is_kept_and_no_steps_end_at_training(make_harness: HarnessFactory) -> None:
    h = make_harness()
    pid = submit(h, [])
    train(h, pid, registered_model=MODEL)
    project = h.project(pid)
    assert project.status == ProjectStatus.SUCCEEDED and project.stage == Stage.TRAINING
    assert project.registered_model is not None and project.registered_model.uri == MODEL["uri"]
    assert project.inference is None and trail(h, pid)[-1] == (5, "done")
    finished = [e for e in h.bus.published if e.kind == EventKind.PROJECT_FINISHED]
    assert finished[0].data["registered_model"] == MODEL


def test_serving_build_then_inference_that_outlives_the_project(make_harness: HarnessFactory) -> None:
    h = make_harness()
    pid = submit(h, BOTH)
    train(h, pid, registered_model=MODEL)
    project = h.project(pid)
    assert project.stage == Stage.POST_TRAINING and project.status == ProjectStatus.RUNNING
    assert h.orchestrator.running(pid) == ["observer", "serving-builder"]  # the actors went at once
    job = h.orchestrator.named(pid, "serving-builder").spec
    assert job.env["FLOPS_JOB_KIND"] == "serving" and MODEL["uri"] in job.env["FLOPS_JOB"]
    h.send(pid, Source.BUILDER, EventKind.BUILD_STEP, "download", step="download", seconds=0.7)
    assert h.project(pid).serving_step_seconds == {"download": 0.7} and h.project(pid).build_step_seconds == {}

    built(h, pid)
    project = h.project(pid)
    assert project.inference is not None and project.inference.state == "starting"
    assert "inference" not in project.services  # not undeployed with the project's services
    spec = h.orchestrator.named(pid, "inference").spec
    assert spec.role is ServiceRole.INFERENCE and spec.one_shot is False
    assert spec.image == serving_manifest()["artifact"]
    assert project.inference.url.startswith("http://127.0.0.1:")

    ready(h, pid)
    project = h.project(pid)
    assert project.status == ProjectStatus.SUCCEEDED and trail(h, pid)[-2:] == [(5, "done"), (6, "done")]
    assert project.inference is not None and project.inference.state == "running"
    assert project.inference.ready_seconds == 1.5 and project.final_metrics == {"accuracy": 0.93, "loss": 0.2}
    h.advance(OBSERVER_GRACE_S + EXIT_GRACE_S + 1)
    assert h.orchestrator.running(pid) == ["inference"]
    view = public_view(project).model_dump(mode="json")
    assert view["inference"] == {
        "url": project.inference.url,
        "node": project.inference.node,
        "state": "running",
        "ready_seconds": 1.5,
    }
    assert view["registered_model"] == MODEL and "serving" not in view


def test_build_only_ends_with_the_runtime_and_no_service(make_harness: HarnessFactory) -> None:
    h = make_harness()
    pid = submit(h, [PostTrainingStep.BUILD_IMAGE_FOR_TRAINED_MODEL])
    train(h, pid, registered_model=MODEL)
    built(h, pid)
    project = h.project(pid)
    assert project.status == ProjectStatus.SUCCEEDED and project.serving is not None and project.inference is None
    h.nothing_left_after_grace(pid)


def test_failed_serving_build_fails_only_stage_6(make_harness: HarnessFactory) -> None:
    h = make_harness()
    pid = submit(h, BOTH)
    train(h, pid, registered_model=MODEL)
    cause = "installing the serving dependencies failed: no such package"
    h.send(pid, Source.BUILDER, EventKind.SERVING_BUILD_FAILED, cause, step="serving_environment")
    project = h.project(pid)
    assert project.status == ProjectStatus.FAILED and project.failed_stage == Stage.POST_TRAINING
    assert project.cause == cause and trail(h, pid)[-2:] == [(5, "done"), (6, "failed")]
    assert project.registered_model is not None and project.final_metrics == {"accuracy": 0.93, "loss": 0.2}
    h.nothing_left_after_grace(pid)


def test_no_registered_version_fails_stage_6_with_the_registry_cause(make_harness: HarnessFactory) -> None:
    h = make_harness()
    pid = submit(h, BOTH)
    train(h, pid, registration_error="registering the model as m failed: 403")
    project = h.project(pid)
    assert (project.status, project.failed_stage) == (ProjectStatus.FAILED, Stage.POST_TRAINING)
    assert project.cause == "registering the model as m failed: 403" and project.final_metrics
    assert "serving-builder" not in h.orchestrator.running(pid)


def test_serving_builder_that_dies_silently_fails_stage_6(make_harness: HarnessFactory) -> None:
    h = make_harness()
    pid = submit(h, BOTH)
    train(h, pid, registered_model=MODEL)
    h.orchestrator.exit(pid, "serving-builder", 137, "Killed")
    h.drain()  # the tick notes the exit; the failure waits for the grace
    h.advance(EXIT_GRACE_S + 1)
    project = h.project(pid)
    assert project.failed_stage == Stage.POST_TRAINING and "Killed" in (project.cause or "")


def test_inference_that_stops_before_answering_fails_stage_6(make_harness: HarnessFactory) -> None:
    h = make_harness()
    pid = submit(h, BOTH)
    train(h, pid, registered_model=MODEL)
    built(h, pid)
    h.orchestrator.exit(pid, "inference", 1, "OSError: [Errno 98] address already in use")
    h.drain()  # the tick notes the exit; the failure waits for the grace
    h.advance(EXIT_GRACE_S + 1)
    project = h.project(pid)
    assert (project.status, project.failed_stage) == (ProjectStatus.FAILED, Stage.POST_TRAINING)
    assert "address already in use" in (project.cause or "")
    assert project.inference is not None and project.inference.state == "failed"
    h.nothing_left_after_grace(pid)


def test_inference_failed_event_fails_stage_6(make_harness: HarnessFactory) -> None:
    h = make_harness()
    pid = submit(h, BOTH)
    train(h, pid, registered_model=MODEL)
    built(h, pid)
    h.send(pid, Source.INFERENCE, EventKind.INFERENCE_FAILED, "the model does not load for serving: boom")
    project = h.project(pid)
    assert project.cause == "the model does not load for serving: boom" and project.failed_stage == 6
    assert "inference" not in h.orchestrator.running(pid)


def test_stop_inference_undeploys_it_once(make_harness: HarnessFactory) -> None:
    h = make_harness()
    pid = serving(h)
    assert h.engine.stop_inference(pid) is True
    project = h.project(pid)
    assert project.inference is not None and project.inference.state == "stopped"
    assert project.status == ProjectStatus.SUCCEEDED and "inference" not in h.orchestrator.running(pid)
    assert h.engine.stop_inference(pid) is False
    assert any(e.message == "inference service stopped" for e in h.store.list_events(pid))


def test_cancel_in_stage_6_and_after_the_end(make_harness: HarnessFactory) -> None:
    h = make_harness()
    building = submit(h, BOTH)
    train(h, building, registered_model=MODEL)
    h.engine.cancel(building)
    h.drain()
    assert h.project(building).status == ProjectStatus.CANCELLED and trail(h, building)[-1] == (6, "cancelled")
    starting = submit(h, BOTH)
    train(h, starting, registered_model=MODEL)
    built(h, starting)
    h.engine.cancel(starting)
    h.drain()
    inference = h.project(starting).inference
    assert inference is not None and inference.state == "stopped"
    ended = serving(h)
    h.engine.cancel(ended)  # an ended project: its inference service is stopped, its status stays
    h.drain()
    assert h.project(ended).status == ProjectStatus.SUCCEEDED
    inference = h.project(ended).inference
    assert inference is not None and inference.state == "stopped"
    h.advance(OBSERVER_GRACE_S + 0.1)
    for pid in (building, starting, ended):
        assert h.orchestrator.running(pid) == []


def test_inference_is_found_again_after_a_restart(make_harness: HarnessFactory) -> None:
    first = make_harness()
    pid = serving(first)
    first.engine.stop()
    second = make_harness(orchestrator=first.orchestrator, store=first.store, clock=first.clock)
    assert pid in second.engine.ctx.serving
    inference = second.project(pid).inference
    assert inference is not None and inference.state == "running"
    assert second.engine.stop_inference(pid) is True
    assert "inference" not in second.orchestrator.running(pid)


def test_inference_gone_during_a_restart_is_marked_failed(make_harness: HarnessFactory) -> None:
    first = make_harness()
    pid = serving(first)
    first.engine.stop()
    first.orchestrator.exit(pid, "inference", 137)
    second = make_harness(orchestrator=first.orchestrator, store=first.store, clock=first.clock)
    assert pid not in second.engine.ctx.serving
    inference = second.project(pid).inference
    assert inference is not None and inference.state == "failed"


def test_inference_that_exits_after_the_end_is_marked_failed(make_harness: HarnessFactory) -> None:
    h = make_harness()
    pid = serving(h)
    h.orchestrator.exit(pid, "inference", 1, "MemoryError")
    h.drain()  # the tick notes the exit; the failure waits for the grace
    h.advance(EXIT_GRACE_S + 1)
    project = h.project(pid)
    assert project.status == ProjectStatus.SUCCEEDED
    assert project.inference is not None and project.inference.state == "failed"
    assert any("MemoryError" in e.message for e in h.store.list_events(pid))
    assert pid not in h.engine.ctx.serving


def test_late_or_duplicate_stage_6_events_change_nothing(make_harness: HarnessFactory) -> None:
    h = make_harness()
    pid = serving(h)
    before = h.project(pid)
    event = make_event(pid, Source.INFERENCE, EventKind.INFERENCE_READY, "again", seconds=9.0)
    h.deliver(event)
    h.deliver(event)
    built(h, pid)
    after = h.project(pid)
    assert after.inference == before.inference and after.status == ProjectStatus.SUCCEEDED
    assert h.orchestrator.running(pid).count("inference") == 1
