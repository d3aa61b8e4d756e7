"""The hostile repo beside a normal project: what the local and Docker tests share.

``tests/hostile_repos/hostile_sklearn`` is a valid repo whose ``DataManager`` and ``fit_model`` try to read
the admin token, the credentials, the store, the other project's working directories and another node's
data; to write into the registry, its own runtime and outside its working directory; to forge events for
the other project and read every project's events; to create a run in the other project's MLflow
experiment (from the learner, and from the aggregator with its MLflow login: every experiment id up to 10);
to signal the other project's processes; to reach a Docker socket. Each outcome is on the hostile
learner's (aggregator's) output and the learner's in its train loss (``1000 + bitmask of what succeeded``,
logged to MLflow). The normal project trains at the same time and must finish untouched; each event log
holds only its own.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from flops_manager.cli.client import FlopsClient
from flops_suite.embedded import EmbeddedSuite
from tests.e2e.conftest import example_sla, wait_final, wait_stage
from tests.helpers.git_repos import make_git_repo

HOSTILE_REPO = Path(__file__).resolve().parents[1] / "hostile_repos" / "hostile_sklearn"
LEARNER_RECORD = "HOSTILE-ATTEMPTS "
AGGREGATOR_RECORD = "HOSTILE-AGGREGATOR "
ALL_BLOCKED = 1000.0  # the hostile repo's train loss when no attempt succeeded


def hostile_sla(suite: EmbeddedSuite) -> dict[str, Any]:
    """The hostile repo on the one node holding tag ``hostile`` (learner-2)."""
    one = {"min_available_clients": 1, "min_fit_clients": 1, "min_evaluate_clients": 1}
    sla = example_sla(suite, "digits_sklearn", data_tags=["hostile"], training_rounds=2, **one)
    sla["ml_repo_url"] = suite.git_url("hostile_sklearn")
    return sla


def mlflow_get(suite: EmbeddedSuite, path: str, **params: str) -> dict[str, Any]:
    """An MLflow REST answer, as the suite's admin."""
    creds = suite.credentials()
    auth = (creds.mlflow_username, creds.mlflow_password.get_secret_value())
    answer = httpx.get(f"{suite.mlflow_url}/api/2.0/mlflow/{path}", params=params, auth=auth, timeout=10)
    answer.raise_for_status()
    result: dict[str, Any] = answer.json()
    return result


def experiment_id(suite: EmbeddedSuite, name: str, timeout_s: float = 60) -> str:
    """The id of MLflow experiment ``name`` once its aggregator made it."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            found = mlflow_get(suite, "experiments/get-by-name", experiment_name=name)
            return str(found["experiment"]["experiment_id"])
        except httpx.HTTPStatusError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def attempt_records(suite: EmbeddedSuite, project_id: str, service: str, record: str) -> list[dict[str, str]]:
    """Every ``record`` line (``HOSTILE-…``) a hostile service printed, in order: attempt -> outcome each
    (a learner: its own process's, then one per ClientApp process)."""
    log = (suite.home / "services" / project_id / service / "output.log").read_text(errors="replace")
    lines = [line.split(record, 1)[1] for line in log.splitlines() if record in line]
    assert lines, f"the hostile {service} made no attempt:\n{log[-3000:]}"
    return [json.loads(line) for line in lines]


def assert_broker_acl_stopped(records: list[dict[str, str]], project_id: str) -> None:
    """Every process logged in to the broker as its project's own user, and the ACL (not a failed login)
    kept it from the other project: the publish on its topic refused, nothing of it received on ``#`` (the
    event logs are checked for forged events too)."""
    login = f"connected as flops-p-{project_id} "
    for outcomes in records:
        outcome = outcomes["mqtt_read_foreign_events"]
        assert login in outcome and "received no event of another project" in outcome, outcome
        assert "PUBACK on the victim's topic Not authorized" in outcome, outcome


def run_hostile_beside_victim(
    suite: EmbeddedSuite,
    admin: FlopsClient,
    hostile_node: str,
    while_training: Callable[[str], None] | None = None,
    **extra_target: list[str],
) -> dict[str, str]:
    """The hostile project on ``hostile_node`` while digits_sklearn trains on learner-0 and learner-1.

    ``while_training`` is called with the victim's id while it trains. Asserts that every attempt failed
    and the victim finished untouched; returns the attempts' outcomes.
    """
    started = time.monotonic()
    admin.mock_data("digits", "digits", nodes=["learner-0", "learner-1"])
    admin.mock_data("hostile", "digits", nodes=[hostile_node])
    make_git_repo(HOSTILE_REPO, suite.home / "example-repos" / "hostile_sklearn")

    # The hostile project first: its learner waits for the target (target.json) once deployed.
    hostile_id = admin.submit(hostile_sla(suite))["project_id"]
    hostile = wait_stage(admin, hostile_id, 4, timeout_s=600)
    assert hostile["status"] == "running", hostile.get("cause")
    victim_id = admin.submit(example_sla(suite, "digits_sklearn", training_rounds=6))["project_id"]
    victim = wait_stage(admin, victim_id, 5, timeout_s=600)
    assert victim["stage"] == 5 and victim["status"] == "running", (victim["status"], victim.get("cause"))
    victim_experiment = experiment_id(suite, f"flops-admin-{victim_id}")
    target = {
        "victim_project": victim_id,
        "victim_tag": "digits",
        "victim_experiment_id": victim_experiment,
        "mlflow_url": suite.mlflow_url,
        **extra_target,
    }
    (suite.home / "nodes" / hostile_node / "data" / "hostile" / "target.json").write_text(json.dumps(target))
    if while_training is not None:
        while_training(victim_id)

    hostile = wait_final(admin, hostile_id, 400)
    victim = wait_final(admin, victim_id, 400)
    learner_records = attempt_records(suite, hostile_id, "learner-0", LEARNER_RECORD)
    outcomes = learner_records[-1] | attempt_records(suite, hostile_id, "aggregator", AGGREGATOR_RECORD)[-1]
    print(f"hostile and victim projects: {time.monotonic() - started:.1f} s")
    for name, outcome in sorted(outcomes.items()):
        print(f"  {name}: {outcome}")

    # The hostile project trained (its code ran), and every attempt failed: on its output and in MLflow.
    assert hostile["status"] == "succeeded", hostile.get("cause")
    assert len(outcomes) == 14 and all(o.startswith("blocked: ") for o in outcomes.values()), outcomes
    assert len(learner_records) >= 2, "no attempt from a ClientApp process"  # the learner's own, then fit_model's
    assert_broker_acl_stopped(learner_records, hostile_id)
    history = mlflow_get(suite, "metrics/get-history", run_id=hostile["mlflow"]["run_id"], metric_key="train_loss")
    assert [m["value"] for m in history["metrics"]] == [ALL_BLOCKED, ALL_BLOCKED]

    # The victim finished untouched, with its own metrics, one run in its experiment.
    assert victim["status"] == "succeeded", victim.get("cause")
    assert victim["rounds_completed"] == 6 and victim["final_metrics"]["accuracy"] >= 0.85
    runs = httpx.post(
        f"{suite.mlflow_url}/api/2.0/mlflow/runs/search",
        json={"experiment_ids": [victim_experiment]},
        auth=(suite.credentials().mlflow_username, suite.credentials().mlflow_password.get_secret_value()),
        timeout=10,
    ).json()["runs"]
    assert [r["info"]["run_id"] for r in runs] == [victim["mlflow"]["run_id"]]

    # Each event log holds only its own project's events, none forged.
    for project_id in (victim_id, hostile_id):
        events = admin.events(project_id)
        assert events and {e["project_id"] for e in events} == {project_id}
        assert not [e for e in events if "HOSTILE" in e["message"]], f"forged events stored for {project_id}"
    assert "HOSTILE" not in admin.timeline(victim_id)
    return outcomes
