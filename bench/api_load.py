"""P7: status reads per second and SLA POST latency under a bounded load from a second process."""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds a process has used so far (0 when unknown)."""
    if pid is None:
        return 0.0
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rfind(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def runqueue_seconds(pid: int | None) -> float:
    """Seconds the threads of a process have spent runnable but waiting for a CPU (0 when unknown).

    The second field of each thread's ``/proc/PID/task/TID/schedstat``: time a request spends
    there is waiting the process cannot do anything about but the machine's load.
    """
    if pid is None:
        return 0.0
    total = 0
    for stat in Path(f"/proc/{pid}/task").glob("*/schedstat"):
        try:
            total += int(stat.read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return total / 1e9


def load(
    base_url: str,
    token: str,
    project_id: str,
    sla: dict[str, Any],
    reads: int,
    posts: int,
    threads: int,
    cpu_pids: dict[str, int] | None = None,
    paced_posts: int = 0,
    paced_rate_per_s: float = 5.0,
) -> dict[str, Any]:
    """``reads`` GETs of one project over ``threads`` connections, then ``posts`` back-to-back POSTs,
    then (after a pause for their projects to settle) ``paced_posts`` POSTs at ``paced_rate_per_s``.

    Every POST starts a project (an observer process, a ``git ls-remote``): back to back, that
    background work piles up on the machine and is part of what the burst latency shows.

    With ``cpu_pids`` (name -> pid, e.g. the manager and the store) it also reports the CPU time
    each of those processes spent per read and per POST: unlike latency, that hardly depends on
    what else the machine is doing.
    """
    pids = cpu_pids or {}
    headers = {"Authorization": f"Bearer {token}"}
    clients = [httpx.Client(base_url=base_url, headers=headers, timeout=10) for _ in range(threads)]

    def read_batch(i: int) -> list[float]:
        lat = []
        for _ in range(reads // threads):
            t0 = time.perf_counter()
            clients[i].get(f"/api/flops/projects/{project_id}").raise_for_status()
            lat.append(time.perf_counter() - t0)
        return lat

    cpu0 = {name: cpu_seconds(pid) for name, pid in pids.items()}
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        read_lat = [x for batch in pool.map(read_batch, range(threads)) for x in batch]
    read_wall = time.perf_counter() - started
    cpu1 = {name: cpu_seconds(pid) for name, pid in pids.items()}
    post_lat = []
    for _ in range(posts):
        t0 = time.perf_counter()
        clients[0].post("/api/flops/projects", json=sla).raise_for_status()
        post_lat.append(time.perf_counter() - t0)
    cpu_burst = {name: cpu_seconds(pid) for name, pid in pids.items()}
    paced_lat = []
    if paced_posts and posts:
        time.sleep(15.0)  # let the burst's projects end (stage 2) and their observers stop
    cpu2 = {name: cpu_seconds(pid) for name, pid in pids.items()}
    wait2 = {name: runqueue_seconds(pid) for name, pid in pids.items()} | {"client": runqueue_seconds(os.getpid())}
    if paced_posts:
        slot = time.perf_counter()
        for _ in range(paced_posts):
            slot += 1.0 / paced_rate_per_s
            t0 = time.perf_counter()
            clients[0].post("/api/flops/projects", json=sla).raise_for_status()
            paced_lat.append(time.perf_counter() - t0)
            time.sleep(max(0.0, slot - time.perf_counter()))
    cpu3 = {name: cpu_seconds(pid) for name, pid in pids.items()}
    wait3 = {name: runqueue_seconds(pid) for name, pid in pids.items()} | {"client": runqueue_seconds(os.getpid())}
    for c in clients:
        c.close()
    cpu: dict[str, float] = {}
    if paced_lat:  # the time the paced POSTs' processes waited for a CPU, per POST
        for name in wait3:
            cpu[f"{name}_runqueue_ms_per_paced_post"] = round((wait3[name] - wait2[name]) * 1000 / len(paced_lat), 3)
    for name in pids:
        cpu[f"{name}_cpu_ms_per_read"] = round((cpu1[name] - cpu0[name]) * 1000 / max(1, len(read_lat)), 3)
        cpu[f"{name}_cpu_ms_per_post"] = round((cpu_burst[name] - cpu1[name]) * 1000 / max(1, len(post_lat)), 3)
        if paced_lat:  # includes what the paced projects' own background work costs the process
            cpu[f"{name}_cpu_ms_per_paced_post"] = round((cpu3[name] - cpu2[name]) * 1000 / len(paced_lat), 3)
    return (
        cpu
        | {
            "reads": len(read_lat),
            "reads_per_s": round(len(read_lat) / read_wall, 1) if read_lat else 0.0,
            "read_p50_ms": round(_median(read_lat) * 1000, 2),
            "read_p99_ms": round(_percentile(read_lat, 0.99) * 1000, 2),
            "posts": len(post_lat),
            "post_p50_ms": round(_median(post_lat) * 1000, 2),
            "post_p99_ms": round(_percentile(post_lat, 0.99) * 1000, 2),
        }
        | (
            {
                "paced_posts": len(paced_lat),
                "paced_rate_per_s": paced_rate_per_s,
                "paced_post_p50_ms": round(_median(paced_lat) * 1000, 2),
                "paced_post_p99_ms": round(_percentile(paced_lat, 0.99) * 1000, 2),
            }
            if paced_lat
            else {}
        )
    )


if __name__ == "__main__":
    args = json.loads(sys.argv[1])
    print(json.dumps(load(**args)))
