"""P7: status reads per second and SLA POST latency under a bounded load from a second process."""

from __future__ import annotations

import json
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def load(
    base_url: str, token: str, project_id: str, sla: dict[str, Any], reads: int, posts: int, threads: int
) -> dict[str, Any]:
    """``reads`` GETs of one project over ``threads`` connections, then ``posts`` sequential POSTs."""
    headers = {"Authorization": f"Bearer {token}"}
    clients = [httpx.Client(base_url=base_url, headers=headers, timeout=10) for _ in range(threads)]

    def read_batch(i: int) -> list[float]:
        lat = []
        for _ in range(reads // threads):
            t0 = time.perf_counter()
            clients[i].get(f"/api/flops/projects/{project_id}").raise_for_status()
            lat.append(time.perf_counter() - t0)
        return lat

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        read_lat = [x for batch in pool.map(read_batch, range(threads)) for x in batch]
    read_wall = time.perf_counter() - started
    post_lat = []
    for _ in range(posts):
        t0 = time.perf_counter()
        clients[0].post("/api/flops/projects", json=sla).raise_for_status()
        post_lat.append(time.perf_counter() - t0)
    for c in clients:
        c.close()
    return {
        "reads": len(read_lat),
        "reads_per_s": round(len(read_lat) / read_wall, 1),
        "read_p50_ms": round(statistics.median(read_lat) * 1000, 2),
        "read_p99_ms": round(_percentile(read_lat, 0.99) * 1000, 2),
        "posts": len(post_lat),
        "post_p50_ms": round(statistics.median(post_lat) * 1000, 2),
        "post_p99_ms": round(_percentile(post_lat, 0.99) * 1000, 2),
    }


if __name__ == "__main__":
    args = json.loads(sys.argv[1])
    print(json.dumps(load(**args)))
