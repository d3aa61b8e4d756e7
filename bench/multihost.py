"""The digits project on a one-node Swarm and on a three-host Swarm, in one run (``python -m bench.multihost``).

One private Docker engine (registry, base images, builder image: ``tests/e2e/containers.py``) serves both:

1. **three hosts**: ``deploy/start-swarm-cluster.sh 3`` (``tests/e2e/clusters.py``: network namespaces on a
   link-local bridge, one dockerd each, the TLS registry and the suite on the bridge address), digits data on
   ``flc-h1`` and ``flc-h2``; the same project cold (built on ``flc-h0``, pulled by each learner host over the
   bridge), then warm (no build, no pull);
2. **one-node swarm**: ``deploy/start-swarm.sh`` on that engine (loopback), an authenticated suite, digits
   data on the node; the same project cold (build included), then warm (images cached). It waits while
   another engine's one-node swarm holds the machine's ``docker_gwbridge``.

Reported: each run's POST → done and stage times, the ratios three hosts / one node (cold and warm), the
swarm and cluster start and stop times, and per learner host its image pulls (first and cached). Written
with ``bench.__main__.write_results`` to ``bench/results/multihost.json``, and as a Markdown section to
``bench/results/multihost.md``, which replaces the multi-host section of ``bench/RESULTS.md``.

Network namespaces need root and a kernel that allows them: where this machine cannot make one, the bench
prints why and exits 0 without figures (``make bench`` goes on).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.__main__ import RESULTS, _load, write_results
from bench.e2e import run_project
from flops_manager.cli.client import FlopsClient
from flops_suite.swarm import GWBRIDGE
from tests.e2e.clusters import running_cluster, timed_pull
from tests.e2e.containers import DockerEngine, free_ports, run_script, start_engine, suite_on_engine

SECTION_START = "<!-- bench.multihost -->"
SECTION_END = "<!-- /bench.multihost -->"
TRAINING = {"training_rounds": 2}  # digits_sklearn: 2 learners
LEARNER_HOSTS = ["flc-h1", "flc-h2"]


def namespaces_unavailable() -> str | None:
    """Why this machine cannot make the test cluster's network namespaces, or None when it can."""
    if os.geteuid() != 0:
        return "not root: network namespaces and per-host dockerd need root"
    missing = [tool for tool in ("ip", "nsenter", "unshare") if shutil.which(tool) is None]
    if missing:
        return f"missing tools: {', '.join(missing)}"
    probe = subprocess.run(["unshare", "--net", "true"], capture_output=True, text=True, timeout=30, check=False)
    if probe.returncode != 0:  # a namespace made by `unshare` goes with its process: nothing to clean up
        return f"cannot create a network namespace: {probe.stderr.strip() or probe.returncode}"
    return None


def _cold_and_warm(client: FlopsClient, suite: Any) -> dict[str, Any]:
    cold = run_project(client, suite, "digits_sklearn", **TRAINING)
    warm = run_project(client, suite, "digits_sklearn", **TRAINING)
    return {"cold": cold, "warm": warm}


def wait_for_free_gwbridge(timeout_s: float = 1200.0) -> float:
    """Wait until no other engine's one-node swarm holds the Linux bridge ``docker_gwbridge`` (a second one
    would share it, and its removal would break the other); the seconds waited."""
    started = time.monotonic()
    gwbridge = Path("/sys/class/net", GWBRIDGE)
    if gwbridge.exists():
        print(f"bench.multihost: waiting for another engine's {GWBRIDGE} to go", flush=True)
    while gwbridge.exists():
        if time.monotonic() - started > timeout_s:
            raise RuntimeError(f"{GWBRIDGE} still exists after {timeout_s:.0f} s: another one-node swarm runs")
        time.sleep(5)
    return round(time.monotonic() - started, 1)


def one_node(engine: DockerEngine, base: Path) -> dict[str, Any]:
    """The one-node swarm on ``engine``: start, cold and warm project, stop."""
    waited_s = wait_for_free_gwbridge()
    env = {**engine.env, "DOCKER_HOST": engine.docker_host}
    (listen_port,) = free_ports(1)
    suite = suite_on_engine(engine, base / "one-node-home", "swarm", auth=True)
    result: dict[str, Any] = {"load_start": _load(), "waited_for_gwbridge_s": waited_s}
    started = time.monotonic()
    run_script("start-swarm.sh", "--listen-port", str(listen_port), env=env, timeout_s=120)
    result["swarm_start_s"] = round(time.monotonic() - started, 2)
    try:
        suite.up()
        client = FlopsClient(suite.api_url, suite.admin_token(), timeout_s=120)
        client.mock_data("digits", "digits", nodes=[engine.client.info()["Name"]])
        result |= _cold_and_warm(client, suite)
    finally:
        try:
            suite.down()
        finally:
            stopping = time.monotonic()
            run_script("stop-swarm.sh", env=env, timeout_s=120)
            result["swarm_stop_s"] = round(time.monotonic() - stopping, 2)
    result["load_end"] = _load()
    return result


def _pulled(client: Any, since: float, until: float) -> list[str]:
    """The images an engine pulled between ``since`` and ``until`` (its event log)."""
    events = client.events(since=int(since), until=int(until) + 1, decode=True, filters={"event": "pull"})
    return [str(e.get("id") or e.get("Actor", {}).get("ID")) for e in events]


def three_hosts(engine: DockerEngine, base: Path) -> dict[str, Any]:
    """The three-host cluster: start, cold and warm project (pulls per learner host), timed pulls, stop."""
    result: dict[str, Any] = {"load_start": _load()}
    with running_cluster(engine, base / "cluster") as setup:
        result["cluster_start_s"] = round(setup.started_in_s, 2)
        setup.admin.mock_data("digits", "digits", nodes=LEARNER_HOSTS)
        pulls: dict[str, dict[str, list[str]]] = {host: {} for host in LEARNER_HOSTS}
        for name in ("cold", "warm"):
            since = time.time()
            result[name] = run_project(setup.admin, setup.suite, "digits_sklearn", **TRAINING)
            for host in LEARNER_HOSTS:
                pulls[host][name] = _pulled(setup.engines[host], since, time.time())
        result["pulls_during_projects"] = pulls
        # The learner image again on one host: cached (a manifest check), then removed and pulled first.
        result["learner_image_pull"] = {LEARNER_HOSTS[0]: timed_pull(setup.engines[LEARNER_HOSTS[0]], "/flops/learner")}
        result["load_end"] = _load()
    result["cluster_stop_s"] = round(setup.timings["stop_s"], 2)
    return result


def _ratio(a: dict[str, Any], b: dict[str, Any]) -> float | None:
    return round(a["wall_s"] / b["wall_s"], 2) if a.get("status") == b.get("status") == "succeeded" else None


def _stages(run: dict[str, Any]) -> str:
    return " / ".join(f"{v}" for v in run["stages_s"].values())


def render(r: dict[str, Any]) -> str:
    """The figures as the multi-host section of ``bench/RESULTS.md``."""
    one, three = r["one_node"], r["three_hosts"]
    stage_names = " / ".join(k.split(" ", 1)[1] for k in three["cold"]["stages_s"])
    pull = next(iter(three["learner_image_pull"].items()))
    pulled = "; ".join(
        f"{host}: cold {len(by_run['cold'])} pull(s), warm {len(by_run['warm'])}"
        for host, by_run in three["pulls_during_projects"].items()
    )
    rows = [
        ("one-node swarm start / stop (`deploy/start-swarm.sh`, `stop-swarm.sh`)", f"{one['swarm_start_s']} / "
         f"{one['swarm_stop_s']} s"),
        ("3-host cluster start / stop (`deploy/start-swarm-cluster.sh 3`, `stop-swarm-cluster.sh`)",
         f"{three['cluster_start_s']} / {three['cluster_stop_s']} s"),
        ("digits cold, one-node swarm: POST → done (status)", f"{one['cold']['wall_s']} s ({one['cold']['status']})"),
        ("digits cold, 3 hosts: POST → done (status)", f"{three['cold']['wall_s']} s ({three['cold']['status']})"),
        ("**ratio cold, 3 hosts / one node**", f"{r['ratio_cold']}"),
        ("digits warm, one-node swarm: POST → done", f"{one['warm']['wall_s']} s ({one['warm']['status']})"),
        ("digits warm, 3 hosts: POST → done", f"{three['warm']['wall_s']} s ({three['warm']['status']})"),
        ("**ratio warm, 3 hosts / one node**", f"{r['ratio_warm']}"),
        (f"stages ({stage_names}), one node cold / warm", f"{_stages(one['cold'])} s / {_stages(one['warm'])} s"),
        (f"stages ({stage_names}), 3 hosts cold / warm", f"{_stages(three['cold'])} s / {_stages(three['warm'])} s"),
        ("image pulls by the learner hosts during the projects", pulled),
        (f"learner image pull on {pull[0]} over the bridge from the TLS registry, first / cached",
         f"{pull[1]['first_s']} s ({pull[1]['size_mb']} MB) / {pull[1]['cached_s']} s"),
    ]  # fmt: skip
    lines = [
        SECTION_START,
        f"## Multi-host vs one-node Swarm, same run — {r['date']}, `python -m bench.multihost`",
        "",
        f"digits_sklearn, 2 learners, {TRAINING['training_rounds']} rounds, on one private engine's one-node swarm "
        "and then on the 3-host test cluster (learners on flc-h1 and flc-h2, builder on flc-h0). Load average "
        f"(1/5/15 min): one node {one['load_start']} → {one['load_end']}, 3 hosts {three['load_start']} → "
        f"{three['load_end']}; the machine's 2 cores are shared with other work, so times are upper bounds. "
        f"`python -m bench.multihost` took {r['total_s']} s. Raw figures: `bench/results/multihost.json`.",
        "",
        "| figure | measured |",
        "|---|---|",
        *[f"| {a} | {b} |" for a, b in rows],
        SECTION_END,
    ]
    return "\n".join(lines) + "\n"


def replace_section(results_md: Path, section: str) -> None:
    """Put ``section`` in place of the previous one in ``results_md`` (appended when there was none)."""
    text = results_md.read_text() if results_md.is_file() else ""
    if SECTION_START in text and SECTION_END in text:
        before, rest = text.split(SECTION_START, 1)
        after = rest.split(SECTION_END, 1)[1].lstrip("\n")
        text = before + section + ("\n" + after if after else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    results_md.write_text(text)


def main() -> int:
    """Run both setups in one run; record the figures (or say why this machine cannot)."""
    reason = namespaces_unavailable()
    if reason is not None:
        print(f"bench.multihost: SKIPPED, this machine cannot run the 3-host cluster: {reason}", flush=True)
        return 0
    started = time.monotonic()
    results: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M"), "load_start": _load()}
    with tempfile.TemporaryDirectory(prefix="flops-bench-mh-") as tmp:
        base = Path(tmp)
        (base / "engine").mkdir()
        with contextlib.contextmanager(start_engine)(base / "engine") as engine:
            # The cluster first: its hosts' gwbridges (flc-gw<i>) clash with nobody's, and meanwhile another
            # agent's one-node swarm (the machine's one docker_gwbridge) may end.
            results["three_hosts"] = three_hosts(engine, base)
            results["one_node"] = one_node(engine, base)
    one, three = results["one_node"], results["three_hosts"]
    results["ratio_cold"] = _ratio(three["cold"], one["cold"])
    results["ratio_warm"] = _ratio(three["warm"], one["warm"])
    results["load_end"] = _load()
    results["total_s"] = round(time.monotonic() - started, 1)
    write_results("multihost", results)
    section = render(results)
    (RESULTS / "multihost.md").write_text(section)
    replace_section(RESULTS.parent / "RESULTS.md", section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
