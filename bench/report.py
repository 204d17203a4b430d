"""The pure part of the benchmark: figures, their ratio to the ceiling, the verdict, the table."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    """One measured figure; it passes when every goal it has is met.

    `min_ratio`: measured / ceiling must reach it. `at_least` / `below`: bounds on `measured`.
    A figure that could not be measured (`measured` None) fails, with `note` saying why.
    """

    name: str
    unit: str
    measured: float | None
    ceiling: float | None = None
    min_ratio: float | None = None
    at_least: float | None = None
    below: float | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        return ratio(self.measured, self.ceiling)

    @property
    def goal(self) -> str:
        parts = []
        if self.min_ratio is not None:
            parts.append(f">= {self.min_ratio:.0%} of ceiling")
        if self.at_least is not None:
            parts.append(f">= {_number(self.at_least)} {self.unit}")
        if self.below is not None:
            parts.append(f"< {_number(self.below)} {self.unit}")
        return " and ".join(parts) or "—"

    @property
    def has_goal(self) -> bool:
        return self.min_ratio is not None or self.at_least is not None or self.below is not None

    @property
    def passed(self) -> bool | None:
        """True or False against the goals; None for a figure without a goal."""
        if not self.has_goal:
            return None
        if self.measured is None:
            return False
        checks = []
        if self.min_ratio is not None:
            share = self.ratio
            checks.append(share is not None and share >= self.min_ratio)
        if self.at_least is not None:
            checks.append(self.measured >= self.at_least)
        if self.below is not None:
            checks.append(self.measured < self.below)
        return all(checks)


def ratio(measured: float | None, ceiling: float | None) -> float | None:
    """measured / ceiling, or None when either is missing or the ceiling is not positive."""
    if measured is None or ceiling is None or ceiling <= 0:
        return None
    return measured / ceiling


def percentile(values: Sequence[float], share: float) -> float:
    """The `share` (0..1) percentile by the nearest-rank method."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


def _number(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def verdict(figure: Figure) -> str:
    passed = figure.passed
    if passed is None:
        return "—"
    return "PASS" if passed else "FAIL"


HEADER = ("figure", "measured", "ceiling (same run)", "ratio", "goal", "result")


def rows(figures: Sequence[Figure]) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for figure in figures:
        measured = "n/a" if figure.measured is None else f"{_number(figure.measured)} {figure.unit}"
        ceiling = "—" if figure.ceiling is None else f"{_number(figure.ceiling)} {figure.unit}"
        share = figure.ratio
        name = f"{figure.name} ({figure.note})" if figure.note else figure.name
        out.append(
            (
                name,
                measured,
                ceiling,
                "—" if share is None else f"{share:.0%}",
                figure.goal,
                verdict(figure),
            )
        )
    return out


def markdown_table(figures: Sequence[Figure]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(row) + " |" for row in rows(figures)]
    return "\n".join(lines)
