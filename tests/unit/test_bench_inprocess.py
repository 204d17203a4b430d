"""`python -m bench.inprocess` keeps working: a tiny run prints both figures."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_small_run_prints_cpu_per_request_of_reads_and_writes() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench.inprocess", "--orders", "400", "--requests", "200",
         "--cases", "20"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    figures = re.findall(r"^(GET eligibility|case actions): +([0-9.]+) µs", result.stdout, re.M)
    assert [name for name, _ in figures] == ["GET eligibility", "case actions"]
    assert all(float(value) > 0 for _, value in figures)
