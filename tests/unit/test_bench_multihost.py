"""bench.multihost's rendering: ratios, the section that replaces the previous one in RESULTS.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.multihost import SECTION_END, SECTION_START, _ratio, render, replace_section


def _run(wall_s: float, status: str = "succeeded") -> dict[str, Any]:
    return {"wall_s": wall_s, "status": status, "stages_s": {"1 project start": 1.0, "5 training": wall_s - 1}}


def _results() -> dict[str, Any]:
    one: dict[str, Any] = {
        "swarm_start_s": 2.0,
        "swarm_stop_s": 3.0,
        "cold": _run(100),
        "warm": _run(20),
        "load_start": "1 1 1",
    }
    three: dict[str, Any] = {
        "cluster_start_s": 4.0,
        "cluster_stop_s": 7.0,
        "cold": _run(150),
        "warm": _run(30),
        "pulls_during_projects": {"flc-h1": {"cold": ["learner"], "warm": []}},
        "learner_image_pull": {"flc-h1": {"first_s": 12.0, "cached_s": 0.04, "size_mb": 486}},
        "load_start": "2 2 2",
        "load_end": "3 3 3",
    }
    ratios = {"ratio_cold": _ratio(three["cold"], one["cold"]), "ratio_warm": _ratio(three["warm"], one["warm"])}
    return {"date": "today", "one_node": one | {"load_end": "1 1 1"}, "three_hosts": three, "total_s": 400} | ratios


def test_ratios_only_between_succeeded_runs() -> None:
    assert _ratio(_run(150), _run(100)) == 1.5
    assert _ratio(_run(150, "failed"), _run(100)) is None


def test_the_section_replaces_the_previous_one_and_keeps_the_rest(tmp_path: Path) -> None:
    section = render(_results())
    assert "| **ratio warm, 3 hosts / one node** | 1.5 |" in section
    assert "flc-h1: cold 1 pull(s), warm 0" in section and "12.0 s (486 MB) / 0.04 s" in section
    results_md = tmp_path / "RESULTS.md"
    results_md.write_text("# Benchmark results\n\nrows\n")
    replace_section(results_md, section)
    replace_section(results_md, section.replace("1.5", "1.6"))
    text = results_md.read_text()
    assert (
        text.startswith("# Benchmark results\n\nrows\n") and text.count(SECTION_START) == text.count(SECTION_END) == 1
    )
    assert "| **ratio warm, 3 hosts / one node** | 1.6 |" in text
