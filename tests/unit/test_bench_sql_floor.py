"""`python -m bench.sql_floor` keeps working: a tiny run prints SQLite's work per case action
and the best ratio it leaves the write figure."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_small_run_prints_what_sqlite_spends_per_case_action() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench.sql_floor", "--orders", "400", "--cases", "20",
         "--ceiling", "5000"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    spent = re.search(
        r"per request: (\d+) µs \(([0-9.]+) statements (\d+) µs, COMMIT (\d+)", result.stdout
    )
    assert spent, result.stdout
    total, statements, in_statements, commits = (float(value) for value in spent.groups())
    assert statements >= 3  # at the least the new state, its event and its outbox row
    assert in_statements > 0 and commits > 0 and abs(total - in_statements - commits) <= 1
    assert re.search(r"^the ceiling's INSERT, committed alone: \d+ µs$", result.stdout, re.M)
    assert re.search(r"so at most \d+% of the ceiling", result.stdout)
