"""``make bench`` rewrites its own figures in RESULTS.md and keeps the sections other benches wrote."""

from __future__ import annotations

from bench.__main__ import KEPT_MARKER, with_kept_sections


def test_generated_figures_are_replaced_and_kept_sections_stay() -> None:
    previous = f"# old figures\n| P2 | 60 s |\n\n{KEPT_MARKER}\n\n## Multi-host\nrow\n\n## By hand\nrow\n"
    text = with_kept_sections("# new figures\n| P2 | 15 s |\n", previous)
    assert text.startswith("# new figures\n| P2 | 15 s |\n\n" + KEPT_MARKER)
    assert "60 s" not in text
    assert text.endswith("## Multi-host\nrow\n\n## By hand\nrow\n")
    assert with_kept_sections(text.split(KEPT_MARKER)[0], text) == text


def test_a_first_run_starts_an_empty_kept_part() -> None:
    assert with_kept_sections("# figures\n", "") == f"# figures\n\n{KEPT_MARKER}\n"
