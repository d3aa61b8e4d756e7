"""The project state machine, driven in-process over fake boundaries: every transition, timeout,
restart, duplicate and out-of-order event, and cancel in every stage."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from flops_common.events import EventKind, Source, make_event
from flops_common.stages import ProjectStatus, Stage
from flops_manager.projects.engine import ProjectsStillRunning
from flops_manager.projects.health import EXIT_GRACE_S
from tests.unit.conftest import HarnessFactory
from tests.unit.engine_fakes import COMMIT, FakeOrchestrator, FakeRegistry, Harness, manifest_for, sla

ACTORS = ["aggregator", "learner-0", "learner-1", "observer"]


def submit(h: Harness, **training: object) -> str:
    project = h.engine.submit(sla(**training), "alice")
    h.drain()
    return project.id


def observer_ready(h: Harness, pid: str) -> None:
    h.send(pid, Source.OBSERVER, EventKind.LOG, "observer ready", observer_ready=True)


def to_build(h: Harness, pid: str) -> None:
    observer_ready(h, pid)
    assert h.project(pid).stage == Stage.IMAGE_BUILD


def to_deployment(h: Harness, pid: str) -> None:
    to_build(h, pid)
    h.send(pid, Source.BUILDER, EventKind.BUILD_SUCCEEDED, "built", manifest=manifest_for(h.key(pid)).model_dump())
    assert h.project(pid).stage == Stage.ACTOR_DEPLOYMENT


def to_training(h: Harness, pid: str) -> None:
    to_deployment(h, pid)
    for index in range(2):
        h.send(pid, Source.LEARNER, EventKind.LEARNER_READY, f"learner-{index} ready", samples=700)
    h.send(pid, Source.AGGREGATOR, EventKind.TRAINING_STARTED, "run 7", run_id=7)
    assert h.project(pid).stage == Stage.TRAINING


def succeed(h: Harness, pid: str) -> None:
    h.training_succeeded(pid)


def stage_trail(h: Harness, pid: str) -> list[tuple[int, str]]:
    return [(int(r.stage), r.status) for r in h.project(pid).stages]


# the happy paths
def test_cold_project_runs_every_stage_and_leaves_nothing(make_harness: HarnessFactory) -> None:
    h = make_harness()
    pid = submit(h)
    assert h.project(pid).stage == Stage.IMAGE_BUILD
    assert h.orchestrator.running(pid) == ["builder", "observer"]
    assert h.project(pid).commit == COMMIT and h.project(pid).cache_hit is False
    h.send(pid, Source.BUILDER, EventKind.BUILD_STEP, "clone", step="clone", seconds=0.4)
    assert h.project(pid).build_step_seconds == {"clone": 0.4}
    h.send(pid, Source.BUILDER, EventKind.BUILD_SUCCEEDED, "built", manifest=manifest_for(h.key(pid)).model_dump())
    assert h.orchestrator.running(pid) == ACTORS
    learners = [h.orchestrator.named(pid, f"learner-{i}").handle.node for i in range(2)]
    assert sorted(learners) == ["learner-0", "learner-1"]
    for index in range(2):
        h.send(pid, Source.LEARNER, EventKind.LEARNER_READY, f"learner-{index} ready")
    h.send(pid, Source.AGGREGATOR, EventKind.TRAINING_STARTED, "run 7", run_id=7)
    for rnd in (1, 2, 3):
        h.send(pid, Source.AGGREGATOR, EventKind.ROUND_COMPLETED, f"round {rnd}", round=rnd)
    succeed(h, pid)

    project = h.project(pid)
    assert project.status == ProjectStatus.SUCCEEDED
    assert stage_trail(h, pid) == [(1, "done"), (2, "done"), (3, "done"), (4, "done"), (5, "done")]
    assert project.rounds_completed == 3 and project.learners_ready == 2
    assert project.final_metrics == {"accuracy": 0.93, "loss": 0.2}
    assert project.mlflow is not None and project.mlflow.run_url.endswith("/experiments/3/runs/r1")
    assert project.flower_run_id == "7" and project.services == {}
    assert h.orchestrator.running(pid) == ["observer"]  # it writes the last lines, then goes
    h.nothing_left_after_grace(pid)
    finished = [e for e in h.bus.published if e.kind == EventKind.PROJECT_FINISHED]
    assert len(finished) == 1 and finished[0].data["metrics"]["accuracy"] == 0.93
    kinds = [e.kind for e in h.store.list_events(pid)]
    assert kinds.count(EventKind.ROUND_COMPLETED) == 3 and kinds[-1] == EventKind.PROJECT_FINISHED


def test_cache_hit_skips_the_build(make_harness: HarnessFactory) -> None:
    h = make_harness()
    warm = submit(h)
    to_deployment(h, warm)
    h.registry.manifests[h.key(warm).digest] = manifest_for(h.key(warm))
    pid = submit(h)
    observer_ready(h, pid)
    project = h.project(pid)
    assert project.stage == Stage.ACTOR_DEPLOYMENT and project.cache_hit is True
    assert [int(r.stage) for r in project.stages] == [1, 2, 4]
    assert "builder" not in h.orchestrator.running(pid)


def test_lookup_does_not_wait_for_the_observer_which_gets_what_it_missed(make_harness: HarnessFactory) -> None:
    h = make_harness()
    pid = submit(h)
    assert h.project(pid).stage == Stage.IMAGE_BUILD
    observer_ready(h, pid)  # late: changes no stage, replays the events so far
    assert [int(r.stage) for r in h.project(pid).stages] == [1, 2, 3]
    assert [p for p, _ in h.bus.replays] == [pid]
    replayed = [e.message for e in h.bus.replays[0][1]]
    assert "stage 1 project start: SLA accepted" in replayed
    assert replayed == [e.message for e in h.store.list_events(pid)]


def test_an_observer_that_printed_the_end_is_undeployed_at_once_a_slow_one_after_its_grace(
    make_harness: HarnessFactory,
) -> None:
    h = make_harness()
    done, slow = submit(h), submit(h)
    for pid in (done, slow):
        h.engine.cancel(pid)
    h.drain()
    h.orchestrator.exit(done, "observer", 0)
    h.advance(1)
    assert h.orchestrator.running(done) == [] and h.orchestrator.running(slow) == ["observer"]
    h.nothing_left_after_grace(slow)


# failures at each stage, with their cause
def test_unknown_ref_fails_at_lookup(make_harness: HarnessFactory) -> None:
    h = make_harness()
    pid = h.engine.submit(sla().model_copy(update={"ml_repo_ref": "no-such-branch"}), "alice").id
    h.drain()
    observer_ready(h, pid)
    project = h.project(pid)
    assert project.status == ProjectStatus.FAILED and project.failed_stage == Stage.IMAGE_LOOKUP
    assert "ref 'no-such-branch' does not exist" in (project.cause or "")


def test_no_builder_node_fails_at_lookup(make_harness: HarnessFactory) -> None:
    h = make_harness(orchestrator=FakeOrchestrator(builders=0))
    pid = submit(h)
    observer_ready(h, pid)
    project = h.project(pid)
    assert project.failed_stage == Stage.IMAGE_LOOKUP
    assert "cannot deploy the image builder" in (project.cause or "") and "image-builder" in (project.cause or "")


def test_build_failure_fails_at_build_and_undeploys_the_builder(make_harness: HarnessFactory) -> None:
    h = make_harness()
    pid = submit(h)
    to_build(h, pid)
    h.send(pid, Source.BUILDER, EventKind.BUILD_FAILED, "model_manager.py line 31: SyntaxError", step="contract")
    project = h.project(pid)
    assert project.failed_stage == Stage.IMAGE_BUILD and project.cause == "model_manager.py line 31: SyntaxError"
    assert stage_trail(h, pid)[-1] == (3, "failed")
    assert h.orchestrator.running(pid) == ["observer"]


def test_missing_data_tag_fails_at_deployment(make_harness: HarnessFactory) -> None:
    h = make_harness(orchestrator=FakeOrchestrator(learner_tags=[["digits"], ["cifar"]]))
    pid = submit(h)
    to_build(h, pid)
    h.send(pid, Source.BUILDER, EventKind.BUILD_SUCCEEDED, "built", manifest=manifest_for(h.key(pid)).model_dump())
    project = h.project(pid)
    assert project.failed_stage == Stage.ACTOR_DEPLOYMENT
    assert "cannot place learners" in (project.cause or "") and "only 1 have them" in (project.cause or "")
    assert h.orchestrator.running(pid) == ["observer"]


def test_training_failure_reports_the_aggregator_cause(make_harness: HarnessFactory) -> None:
    h = make_harness()
    pid = submit(h)
    to_training(h, pid)
    h.send(pid, Source.AGGREGATOR, EventKind.TRAINING_FAILED, "Flower run 7 ended as failed: ZeroDivisionError")
    project = h.project(pid)
    assert project.failed_stage == Stage.TRAINING and "ZeroDivisionError" in (project.cause or "")
    assert h.orchestrator.running(pid) == ["observer"]


def test_learners_failing_to_start_fail_the_project_only_below_min_available(make_harness: HarnessFactory) -> None:
    h = make_harness(orchestrator=FakeOrchestrator(learner_tags=[["digits"]] * 3))
    pid = submit(h, learners=3)
    to_deployment(h, pid)
    h.send(pid, Source.LEARNER, EventKind.LEARNER_FAILED, "learner-2: no data")
    assert h.project(pid).status == ProjectStatus.RUNNING and h.project(pid).learners_failed == 1
    h.send(pid, Source.LEARNER, EventKind.LEARNER_FAILED, "learner-1: no data")
    project = h.project(pid)
    assert project.status == ProjectStatus.FAILED and project.cause == "learner-1: no data"


# timeouts
@pytest.mark.parametrize(
    ("stage", "setting", "detail"),
    [
        (Stage.IMAGE_BUILD, "timeout_image_build_s", "image build timed out"),
        (Stage.ACTOR_DEPLOYMENT, "timeout_actor_deployment_s", "(1 of 2 learners ready, training never started)"),
        (Stage.TRAINING, "training_timeout_margin_s", "(1 of 3 rounds done)"),
    ],
)
def test_each_stage_times_out_with_how_far_it_got(
    make_harness: HarnessFactory, stage: Stage, setting: str, detail: str
) -> None:
    h = make_harness(**{setting: 50.0})
    pid = submit(h, round_timeout_s=10.0)
    to_build(h, pid)
    if stage >= Stage.ACTOR_DEPLOYMENT:
        h.send(pid, Source.BUILDER, EventKind.BUILD_SUCCEEDED, "b", manifest=manifest_for(h.key(pid)).model_dump())
        h.send(pid, Source.LEARNER, EventKind.LEARNER_READY, "learner-0 ready")
    if stage == Stage.TRAINING:
        h.send(pid, Source.AGGREGATOR, EventKind.TRAINING_STARTED, "run", run_id=1)
        h.send(pid, Source.AGGREGATOR, EventKind.ROUND_COMPLETED, "r1", round=1)
    budget = 50.0 + (3 * 10.0 if stage == Stage.TRAINING else 0.0)
    h.advance(budget - 1)
    assert h.project(pid).status == ProjectStatus.RUNNING
    h.advance(2)
    project = h.project(pid)
    assert project.status == ProjectStatus.FAILED and project.failed_stage == stage
    assert detail in (project.cause or ""), project.cause
    assert h.orchestrator.running(pid) == ["observer"]


def test_lookup_times_out_when_the_repo_never_answers(make_harness: HarnessFactory) -> None:
    h = make_harness(timeout_image_lookup_s=20.0)
    h.engine.ctx.run_io = lambda work: None  # git ls-remote hangs
    pid = submit(h)
    observer_ready(h, pid)
    h.advance(21)
    project = h.project(pid)
    assert project.failed_stage == Stage.IMAGE_LOOKUP and "image lookup timed out after 21 s" in (project.cause or "")


# services that stop without reporting
def test_aggregator_that_dies_silently_fails_the_project_with_its_log(make_harness: HarnessFactory) -> None:
    h = make_harness()
    pid = submit(h)
    to_training(h, pid)
    h.orchestrator.exit(pid, "aggregator", 137, "round 1\nKilled by http://u:secret@host/x\n")
    h.advance(0.5)  # the tick first sees it gone
    h.advance(EXIT_GRACE_S - 1)
    assert h.project(pid).status == ProjectStatus.RUNNING  # its last event may still be on its way
    h.advance(2)
    cause = h.project(pid).cause or ""
    assert "aggregator on builder-0 stopped (exit code 137) without reporting" in cause
    assert "Killed by http://***@host/x" in cause and "secret" not in cause


def test_a_lost_learner_is_dropped_while_k_of_n_still_holds(make_harness: HarnessFactory) -> None:
    h = make_harness(orchestrator=FakeOrchestrator(learner_tags=[["digits"]] * 3))
    pid = submit(h, learners=3, min_fit_clients=2)
    to_training(h, pid)
    h.orchestrator.exit(pid, "learner-2", 1)
    h.advance(0.5)
    h.advance(EXIT_GRACE_S + 1)
    project = h.project(pid)
    assert project.status == ProjectStatus.RUNNING and "learner-2" not in project.services
    h.orchestrator.exit(pid, "learner-1", 1, "OOM")
    h.advance(0.5)
    h.advance(EXIT_GRACE_S + 1)
    project = h.project(pid)
    assert project.status == ProjectStatus.FAILED
    assert "learner-1 on " in (project.cause or "")  # names the node it ran on
    assert "exited (code 1); 1 learner(s) left, 2 needed: OOM" in (project.cause or "")


# duplicate, late and out-of-order events
def test_redelivered_events_count_once(make_harness: HarnessFactory) -> None:
    h = make_harness()
    pid = submit(h)
    to_deployment(h, pid)
    ready = make_event(pid, Source.LEARNER, EventKind.LEARNER_READY, "learner-0 ready")
    h.deliver(ready)
    h.deliver(ready)
    assert h.project(pid).learners_ready == 1
    assert sum(e.kind == EventKind.LEARNER_READY for e in h.store.list_events(pid)) == 1


def test_out_of_order_and_misplaced_events_change_nothing(make_harness: HarnessFactory) -> None:
    h = make_harness()
    pid = submit(h)
    to_build(h, pid)
    h.send(pid, Source.AGGREGATOR, EventKind.TRAINING_STARTED, "stray", run_id=9)  # not in stage 3
    h.send(pid, Source.AGGREGATOR, EventKind.TRAINING_SUCCEEDED, "stray", metrics={"accuracy": 1.0})
    assert h.project(pid).stage == Stage.IMAGE_BUILD and h.project(pid).status == ProjectStatus.RUNNING
    h.send(pid, Source.BUILDER, EventKind.BUILD_SUCCEEDED, "b", manifest=manifest_for(h.key(pid)).model_dump())
    h.send(pid, Source.BUILDER, EventKind.BUILD_SUCCEEDED, "again", manifest=manifest_for(h.key(pid)).model_dump())
    assert [int(r.stage) for r in h.project(pid).stages] == [1, 2, 3, 4]
    assert h.orchestrator.running(pid).count("aggregator") == 1
    h.send(pid, Source.AGGREGATOR, EventKind.TRAINING_STARTED, "run", run_id=7)
    h.send(pid, Source.AGGREGATOR, EventKind.ROUND_COMPLETED, "r2", round=2)
    h.send(pid, Source.AGGREGATOR, EventKind.ROUND_COMPLETED, "r1 late", round=1)
    assert h.project(pid).rounds_completed == 2
    succeed(h, pid)
    h.send(pid, Source.AGGREGATOR, EventKind.TRAINING_FAILED, "after the end")
    project = h.project(pid)
    assert project.status == ProjectStatus.SUCCEEDED and project.cause is None
    assert any(e.message == "after the end" for e in h.store.list_events(pid))  # kept, not applied


def test_the_managers_own_events_coming_back_are_not_stored_twice(make_harness: HarnessFactory) -> None:
    h = make_harness()
    pid = submit(h)
    observer_ready(h, pid)
    before = len(h.store.list_events(pid))
    for event in list(h.bus.published):
        h.deliver(event)
    assert len(h.store.list_events(pid)) == before


# cancel in every stage
# stage 1 passes within the submit's worker command; stage 6: test_engine_post_training
@pytest.mark.parametrize("stage", [s for s in Stage if s not in {Stage.PROJECT_START, Stage.POST_TRAINING}])
def test_cancel_in_every_stage_undeploys_everything(make_harness: HarnessFactory, stage: Stage) -> None:
    h = make_harness()
    h.engine.ctx.run_io = (lambda work: None) if stage == Stage.IMAGE_LOOKUP else (lambda work: work())
    pid = submit(h)
    if stage >= Stage.ACTOR_DEPLOYMENT:
        h.send(pid, Source.BUILDER, EventKind.BUILD_SUCCEEDED, "b", manifest=manifest_for(h.key(pid)).model_dump())
    if stage == Stage.TRAINING:
        h.send(pid, Source.AGGREGATOR, EventKind.TRAINING_STARTED, "run", run_id=7)
    assert h.project(pid).stage == stage
    h.engine.cancel(pid)
    h.drain()
    project = h.project(pid)
    assert project.status == ProjectStatus.CANCELLED and project.cause is None
    assert stage_trail(h, pid)[-1] == (int(stage), "cancelled")
    h.nothing_left_after_grace(pid)
    h.engine.cancel(pid)  # a second cancel is a no-op
    h.drain()
    assert h.project(pid).status == ProjectStatus.CANCELLED


# restart recovery
def test_a_restarted_engine_resumes_every_stage(make_harness: HarnessFactory) -> None:
    first = make_harness()
    waiting = first.engine.submit(sla(), "alice").id  # stored at stage 1; the manager stopped before starting it
    building = submit(first)
    to_build(first, building)
    training = submit(first)
    to_training(first, training)
    first.engine.stop()

    h = make_harness(orchestrator=first.orchestrator, store=first.store, registry=first.registry, clock=first.clock)
    assert h.project(waiting).stage == Stage.IMAGE_BUILD  # resumed: lookup ran, builder deployed
    h.send(building, Source.BUILDER, EventKind.BUILD_FAILED, "no dependency file")
    assert h.project(building).status == ProjectStatus.FAILED
    h.send(training, Source.AGGREGATOR, EventKind.ROUND_COMPLETED, "r1", round=1)
    succeed(h, training)
    assert h.project(training).status == ProjectStatus.SUCCEEDED
    assert h.orchestrator.running(training) == ["observer"]


def test_a_restarted_engine_finds_a_service_that_died_while_it_was_down(make_harness: HarnessFactory) -> None:
    first = make_harness()
    pid = submit(first)
    to_training(first, pid)
    first.engine.stop()
    first.orchestrator.exit(pid, "aggregator", 1, "Traceback: boom")
    h = make_harness(orchestrator=first.orchestrator, store=first.store, registry=first.registry, clock=first.clock)
    h.advance(0.5)
    h.advance(EXIT_GRACE_S + 1)
    assert "without reporting: Traceback: boom" in (h.project(pid).cause or "")


def test_a_restart_during_lookup_resolves_again(make_harness: HarnessFactory) -> None:
    first = make_harness()
    first.engine.ctx.run_io = lambda work: None  # the manager stopped before git answered
    pid = submit(first)
    observer_ready(first, pid)
    assert first.project(pid).stage == Stage.IMAGE_LOOKUP and first.project(pid).commit is None
    first.engine.stop()
    h = make_harness(store=first.store, orchestrator=first.orchestrator, clock=first.clock)
    assert h.project(pid).stage == Stage.IMAGE_BUILD


# reset
def test_reset_is_refused_while_projects_run_and_then_forgets_everything(make_harness: HarnessFactory) -> None:
    h = make_harness()
    forgotten: list[bool] = []

    class Listener:
        def project_saved(self, project: object) -> None:
            pass

        def projects_forgotten(self) -> None:
            forgotten.append(True)

    h.engine.add_listener(Listener())
    pid = submit(h)
    with pytest.raises(ProjectsStillRunning):
        h.engine.reset()
    h.engine.cancel(pid)
    h.drain()
    h.engine.reset()
    assert h.store.list_projects() == [] and h.store.list_events(pid) == [] and forgotten == [True]


def test_listeners_see_every_write(make_harness: HarnessFactory) -> None:
    h = make_harness()
    seen: list[tuple[str, int]] = []

    class Listener:
        def project_saved(self, project: object) -> None:
            seen.append((project.status.value, int(project.stage)))  # type: ignore[attr-defined]

        def projects_forgotten(self) -> None:
            pass

    h.engine.add_listener(Listener())
    pid = submit(h)
    to_training(h, pid)
    succeed(h, pid)
    assert seen[0] == ("running", 1) and seen[-1] == ("succeeded", 5)
    assert {stage for _, stage in seen} == {1, 2, 3, 4, 5}


def test_registry_is_unchanged_by_a_project(make_harness: HarnessFactory) -> None:
    registry = FakeRegistry()
    h = make_harness(registry=registry)
    pid = submit(h)
    to_training(h, pid)
    assert registry.manifests == {}  # the builder publishes, never the engine


def test_what_validation_changed_in_the_sla_is_a_warning_on_the_project(make_harness: HarnessFactory) -> None:
    h = make_harness()
    low = sla().model_copy(deep=True)
    low = type(low).model_validate({**low.model_dump(mode="json"), "resource_constraints": {"memory": 100}})
    assert low.warnings, "the SLA model raises a 100 MB limit to the actor's floor"
    pid = h.engine.submit(low, "alice").id
    h.drain()
    project = h.project(pid)
    assert project.warnings == low.warnings and "raised to" in project.warnings[0]
    assert any(e.message == f"warning: {low.warnings[0]}" for e in h.store.list_events(pid))


class _SlowTrackingAccounts:
    """MLflow users made later (``finish``) or refused, as MLflow's admin API may do."""

    def __init__(self, error: str | None = None) -> None:
        self.error = error
        self.pending: list[str] = []

    def grant(self, project_id: str, experiment: str, registered_model: str | None) -> None:
        if self.error:
            raise RuntimeError(self.error)
        self.pending.append(project_id)

    def revoke(self, project_id: str) -> None:
        pass


def test_actors_are_deployed_while_the_aggregators_mlflow_user_is_still_being_made(
    make_harness: HarnessFactory,
) -> None:
    h = make_harness()
    warm = submit(h)
    to_deployment(h, warm)
    h.registry.manifests[h.key(warm).digest] = manifest_for(h.key(warm))
    deferred: list[object] = []
    run_io = h.engine.ctx.run_io

    def never_make_users(work: Callable[[], None]) -> None:  # the user is never finished
        deferred.append(work) if work.__qualname__.startswith("start_tracking_user") else run_io(work)

    h.engine.ctx.run_io = never_make_users
    pid = submit(h)
    observer_ready(h, pid)
    assert deferred, "the MLflow user was not started"
    assert h.project(pid).stage == Stage.ACTOR_DEPLOYMENT
    assert {"aggregator", "learner-0", "learner-1"} <= set(h.orchestrator.running(pid))


def test_an_mlflow_user_that_cannot_be_made_fails_the_project_and_undeploys_it(make_harness: HarnessFactory) -> None:
    h = make_harness()
    h.engine.ctx.tracking_accounts = _SlowTrackingAccounts(error="HTTP 500 database is locked")
    pid = submit(h)
    project = h.project(pid)
    assert project.status == ProjectStatus.FAILED
    assert "cannot create the aggregator's MLflow user: HTTP 500 database is locked" in (project.cause or "")
    h.advance(60)
    assert h.orchestrator.running(pid) == []
