"""The pure part of `make bench`: ratios, goals and the table."""

from __future__ import annotations

import pytest
from bench.report import Figure, markdown_table, percentile, ratio


def test_ratio_is_measured_over_ceiling() -> None:
    assert ratio(600, 1000) == pytest.approx(0.6)


@pytest.mark.parametrize(("measured", "ceiling"), [(None, 10.0), (5.0, None), (5.0, 0.0)])
def test_ratio_is_none_without_a_usable_ceiling(
    measured: float | None, ceiling: float | None
) -> None:
    assert ratio(measured, ceiling) is None


def test_a_figure_at_exactly_its_ratio_goal_passes() -> None:
    assert Figure("writes", "req/s", 600, 1000, min_ratio=0.6).passed is True
    assert Figure("writes", "req/s", 599, 1000, min_ratio=0.6).passed is False


def test_every_goal_of_a_figure_must_be_met() -> None:
    fast_but_small = Figure("import", "orders/s", 15_000, 20_000, min_ratio=0.5, at_least=20_000)
    assert fast_but_small.ratio == pytest.approx(0.75)
    assert fast_but_small.passed is False


def test_an_upper_bound_is_strict() -> None:
    assert Figure("p99", "ms", 49.9, below=50).passed is True
    assert Figure("p99", "ms", 50, below=50).passed is False


def test_a_figure_without_goal_has_no_verdict_and_an_unmeasured_one_fails() -> None:
    assert Figure("p50", "ms", 12).passed is None
    assert Figure("deadlines", "/s", None, 100, min_ratio=0.5).passed is False


def test_percentile_uses_the_nearest_rank() -> None:
    values = [float(n) for n in range(1, 101)]
    assert percentile(values, 0.5) == 50
    assert percentile(values, 0.99) == 99
    assert percentile([7.0], 0.99) == 7


def test_the_table_shows_measured_ceiling_ratio_goal_and_result() -> None:
    table = markdown_table(
        [
            Figure("writes", "req/s", 900, 1500, min_ratio=0.6, note="32 clients"),
            Figure("memory", "MB", 120, below=150),
        ]
    )
    lines = table.splitlines()
    assert lines[0].startswith("| figure | measured | ceiling (same run) | ratio | goal |")
    assert (
        "| writes (32 clients) | 900 req/s | 1,500 req/s | 60% | >= 60% of ceiling | PASS |"
        in lines
    )
    assert "| memory | 120 MB | — | — | < 150 MB | PASS |" in lines
