"""``make bench``: P1, P2, P3, P6 and P7 here; writes ``bench/results/latest.json`` and ``bench/RESULTS.md``."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.e2e import FINAL, cold_and_warm, project_critical_path
from bench.plain_flower_run import run_plain_flower
from bench.scale import round_metrics, run_scale
from flops_manager.cli.client import FlopsClient
from flops_suite.embedded import PROJECT_ROOT, EmbeddedSuite
from tests.helpers.suites import free_suite_ports

RESULTS = Path(__file__).resolve().parent / "results"
SCALE_SIZES = (2, 5, 10, 20)


def api_load_args(suite: EmbeddedSuite, client: FlopsClient, project_id: str | None = None) -> dict[str, Any]:
    """The P7 load: reads of ``project_id`` (else of a project that fails at stage 2) and SLA POSTs."""
    sla = json.loads((PROJECT_ROOT / "examples" / "slas" / "digits_sklearn.json").read_text())
    sla["ml_repo_url"] = suite.git_url("digits_sklearn")
    sla["ml_repo_ref"] = "no-such-branch"  # POSTed projects end at stage 2: the API is what is measured
    if project_id is None:
        project_id = client.submit(sla)["project_id"]
        deadline = time.monotonic() + 60
        while client.project(project_id)["status"] not in FINAL and time.monotonic() < deadline:
            time.sleep(0.2)
    return {
        "base_url": suite.api_url,
        "token": suite.admin_token(),
        "project_id": project_id,
        "sla": sla,
        "reads": 2000,
        "posts": 100,
        "threads": 8,
        "paced_posts": 50,
        "paced_rate_per_s": 5.0,
        "cpu_pids": {name: pid for name, pid in suite.status().items() if name in ("manager", "store") and pid},
    }


def run_api_load(args: dict[str, Any]) -> dict[str, Any]:
    """Run ``bench.api_load`` in a second process; its figures."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.api_load", json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=PROJECT_ROOT,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _load() -> str:
    """The load average (1, 5, 15 min) as ``/proc/loadavg`` says."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def write_results(name: str, results: dict[str, Any]) -> None:
    """Store ``results`` as ``bench/results/<name>.json`` and print them."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 2) if values else None


def round_overhead(client: FlopsClient, project_id: str) -> dict[str, Any]:
    """Per-round time and the part of it beyond the learners' training compute (from the events)."""

    rounds = round_metrics(client, project_id)
    return {
        "rounds": rounds,
        "round_time_s_mean": _mean([r["round_time_s"] for r in rounds]),
        "client_compute_s_mean": _mean([r["client_compute_s"] for r in rounds]),
        "overhead_s_mean": _mean([r["round_time_s"] - r["client_compute_s"] for r in rounds]),
    }


def _stages(run: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v} s" for k, v in run["stages_s"].items())


def render_markdown(r: dict[str, Any]) -> str:
    """The figures as the table in ``bench/RESULTS.md``."""
    api = r.get("P7_api", {})
    plain = r.get("P3_plain_flower", {})
    warm_plain = r.get("P3_plain_flower_warm", {})
    overhead = r.get("P3_round_overhead", {})
    path = r["P2_warm"].get("critical_path", {})
    rows = [
        (
            "P1 cold end to end (POST → done), digits_sklearn, 2 learners, 3 rounds",
            f"{r['P1_cold']['wall_s']} s",
            "≤ 60 s",
        ),
        ("P2 warm end to end (images cached)", f"{r['P2_warm']['wall_s']} s", "≤ 15 s"),
        ("P3 plain Flower app by hand, same repo/engine/rounds/learners", f"{plain.get('wall_s')} s", "-"),
        ("P3 ratio FLOps warm total / plain Flower", f"{r.get('P3_ratio_total')}", "≤ 1.3"),
        ("P3 ratio FLOps training stage / plain Flower", f"{r.get('P3_ratio_training_stage')}", "≤ 1.3"),
        (
            "P3 FLOps round time / learners' compute in it / overhead beyond compute (mean of 3)",
            f"{overhead.get('round_time_s_mean')} / {overhead.get('client_compute_s_mean')} / "
            f"{overhead.get('overhead_s_mean')} s",
            "-",
        ),
        (
            "P2 round overhead beyond the learners' compute, median / p90",
            f"{path.get('round_overhead_s_median')} / {path.get('round_overhead_s_p90')} s",
            "median ≤ 0.5 s",
        ),
        ("P2 aggregator deployed → first round completed", f"{path.get('aggregator_start_to_first_round_s')} s", "-"),
        ("P2 actor deployment per learner", f"{path.get('actor_deployment_s_per_learner')} s", "-"),
        (
            "P3b plain Flower app with FLOps' warm SuperExec instead of Flower's (engine alternative)",
            f"{warm_plain.get('wall_s')} s",
            "-",
        ),
        (
            f"P7 status reads/s ({api.get('reads')} reads, 8 connections, second process)",
            f"{api.get('reads_per_s')}",
            "≥ 500/s",
        ),
        ("P7 read latency p50 / p99", f"{api.get('read_p50_ms')} / {api.get('read_p99_ms')} ms", "-"),
        (
            f"P7 SLA POST latency p50 / p99, {api.get('posts')} back to back",
            f"{api.get('post_p50_ms')} / {api.get('post_p99_ms')} ms",
            "p99 ≤ 100 ms",
        ),
        (
            f"P7 SLA POST latency p50 / p99, {api.get('paced_posts')} at {api.get('paced_rate_per_s')}/s",
            f"{api.get('paced_post_p50_ms')} / {api.get('paced_post_p99_ms')} ms",
            "p99 ≤ 100 ms",
        ),
        (
            "P7 manager CPU per read / per POST",
            f"{api.get('manager_cpu_ms_per_read')} / {api.get('manager_cpu_ms_per_post')} ms",
            "-",
        ),
        (
            "P7 store (SecantusDB) CPU per read / per POST",
            f"{api.get('store_cpu_ms_per_read')} / {api.get('store_cpu_ms_per_post')} ms",
            "-",
        ),
        ("suite start (broker, store, MLflow, git, manager)", f"{r['suite_up_s']} s", "-"),
    ]
    lines = [
        f"# Benchmark results — {r['date']}, {r['machine']}",
        "",
        f"Load average (1/5/15 min) at the start: {r.get('load_start')}, at the end: {r.get('load_end')}; "
        f"per step in `bench/results/latest.json`. {r.get('note', '')}",
        "",
        f"`make bench` took {r.get('bench_total_s')} s. Profiles of missed goals, their causes and fixes: "
        "`bench/ANALYSES.md`.",
        "",
        "| figure | measured | goal |",
        "|---|---|---|",
    ]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    lines += ["", "## Stage breakdown (from each project's own timestamps)", ""]
    for name in ("P1_cold", "P2_warm"):
        lines.append(f"- {name}: {_stages(r[name])}")
    for n, fig in r.get("P6_scale", {}).items():
        lines.append(f"- P6 {n} learners: {_stages(fig)}")
    scale = r.get("P6_scale", {})
    if scale:
        lines += [
            "",
            "## P6 scale: one project, n learners on this machine, 2 rounds",
            "",
            "| learners | status | POST → done | round times | learners' compute per round | "
            "peak RSS per learner (mean / max) | peak PSS per learner (mean) | processes per learner |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for n, fig in scale.items():
            times = " / ".join(f"{x['round_time_s']} s" for x in fig["rounds"])
            compute = " / ".join(f"{x['client_compute_s']} s" for x in fig["rounds"])
            status = fig["status"] + (" (separate run, see below)" if fig.get("separate_run") else "")
            lines.append(
                f"| {n} | {status} | {fig['wall_s']} s | {times} | {compute} | "
                f"{fig['peak_rss_mb_per_learner_mean']} / {fig['peak_rss_mb_per_learner_max']} MB | "
                f"{fig['peak_pss_mb_per_learner_mean']} MB | {fig['peak_processes_per_learner']} |"
            )
        lines += [
            "",
            "A learner's memory is the sum over its service's processes (learner, SuperNode, SuperExec, "
            "ClientApp), sampled once a second while the project ran. RSS counts the pages a forked "
            "ClientApp shares with the SuperExec twice; PSS shares them out.",
        ]
        for n, fig in scale.items():
            if fig.get("separate_run"):
                lines += ["", f"{n} learners measured again by `python -m bench.scale {n}`: {fig['separate_run']}."]
            if fig.get("cause"):
                lines += ["", f"{n} learners, cause of failure: {fig['cause']}"]
        for n, old in r.get("P6_replaced", {}).items():
            lines += [
                "",
                f"In the `make bench` run itself {n} learners ended {old['status']} after {old['wall_s']} s"
                + (f": {old['cause']}" if old.get("cause") else "."),
            ]
    return "\n".join(lines) + "\n"


KEPT_MARKER = "<!-- `make bench` rewrites what is above; below: sections of other benches and analyses, kept -->"


def with_kept_sections(generated: str, previous: str) -> str:
    """``RESULTS.md``: the ``generated`` figures, then whatever ``previous`` held below :data:`KEPT_MARKER`
    (sections other benches write, such as ``bench.multihost``'s, and figures recorded by hand)."""
    kept = previous.split(KEPT_MARKER, 1)[1].strip("\n") if KEPT_MARKER in previous else ""
    return generated.rstrip("\n") + "\n\n" + KEPT_MARKER + "\n" + (f"\n{kept}\n" if kept else "")


def write_results_md(results: dict[str, Any]) -> None:
    """Rewrite ``bench/RESULTS.md`` from ``results``, keeping the sections below :data:`KEPT_MARKER`."""
    path = RESULTS.parent / "RESULTS.md"
    previous = path.read_text() if path.is_file() else ""
    path.write_text(with_kept_sections(render_markdown(results), previous))


def main() -> int:
    """Run every benchmark in a fresh suite home and record the figures."""
    started = time.perf_counter()
    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "load_start": _load(),
        "load": {},
        "note": os.environ.get("FLOPS_BENCH_NOTE", ""),
    }
    with tempfile.TemporaryDirectory(prefix="flops-bench-") as tmp:
        home = Path(tmp) / "home"
        manager_env = {"FLOPS_REPO_HOSTS": '["127.0.0.1"]', "FLOPS_LOCAL_LEARNER_NODES": str(max(SCALE_SIZES))}
        suite = EmbeddedSuite(home, free_suite_ports(), manager_env=manager_env)
        t0 = time.perf_counter()
        suite.up()
        results["suite_up_s"] = round(time.perf_counter() - t0, 2)
        try:
            client = FlopsClient(suite.api_url, suite.admin_token())
            results["load"]["before P1"] = _load()
            results |= cold_and_warm(suite, client, home)
            warm = results["P2_warm"]
            for name in ("P1_cold", "P2_warm"):
                results[name]["critical_path"] = project_critical_path(client, results[name])
            results["P3_round_overhead"] = round_overhead(client, warm["project_id"])
            learner_env = next((home / "registry" / "envs").glob("*/learner"))
            data_dirs = [home / "nodes" / f"learner-{i}" / "data" / "digits" for i in range(2)]
            repo = PROJECT_ROOT / "examples" / "ml_repos" / "digits_sklearn"
            results["load"]["before P3"] = _load()
            results["P3_plain_flower"] = run_plain_flower(learner_env, repo, data_dirs, 3, Path(tmp) / "plain")
            results["load"]["before P3b"] = _load()
            results["P3_plain_flower_warm"] = run_plain_flower(
                learner_env, repo, data_dirs, 3, Path(tmp) / "plain-warm", warm=True
            )
            training = warm["stages_s"].get("5 training", 0.0)
            plain = results["P3_plain_flower"]["wall_s"]
            results["P3_ratio_total"] = round(warm["wall_s"] / plain, 2)
            results["P3_ratio_training_stage"] = round(training / plain, 2)
            results["load"]["before P7"] = _load()
            results["P7_api"] = run_api_load(api_load_args(suite, client, warm["project_id"]))
            results["load"]["before P6"] = _load()
            results["P6_scale"] = run_scale(suite, client, SCALE_SIZES)
        finally:
            suite.down()
    results["load_end"] = _load()
    results["bench_total_s"] = round(time.perf_counter() - started, 1)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=2))
    write_results_md(results)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
