"""The CPU accounting of `make bench`'s deadlines run: read from /proc, and what it says."""

from __future__ import annotations

import os
import time

import pytest
from bench.run import Run, cpu_note, http_cpu_note, proc_cpu_seconds


def test_a_process_cpu_time_grows_with_its_work() -> None:
    before = proc_cpu_seconds(os.getpid())
    started = time.process_time()
    while time.process_time() - started < 0.05:
        pass
    assert proc_cpu_seconds(os.getpid()) - before == pytest.approx(0.05, abs=0.03)


def test_the_note_caps_deadlines_by_the_servers_share_on_these_cores(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    fired = Run(done=10_000, rate=2_000, clients_cpu_s=6.0, postgres_cpu_s=5.0)
    pgbench = Run(done=100_000, rate=10_000, clients_cpu_s=2.5, postgres_cpu_s=15.0)
    assert fired.cpu_us_each() == (600, 500)
    note = cpu_note(fired, pgbench)
    assert "the workers 600 µs, PostgreSQL 500 µs" in note
    assert "pgbench 25 µs, PostgreSQL 150 µs" in note
    # 2 cores / 500 µs = 4,000 deadlines/s at most, 40 % of pgbench's 10,000 tps
    assert note.endswith("at most 4,000 deadlines/s on 2 cores (40% of the ceiling)")


def test_a_server_not_on_this_machine_is_said_so_not_divided_by() -> None:
    fired = Run(done=10_000, rate=2_000, clients_cpu_s=6.0, postgres_cpu_s=0.0)
    pgbench = Run(done=100_000, rate=10_000, clients_cpu_s=2.5, postgres_cpu_s=0.0)
    assert cpu_note(fired, pgbench) == (
        "CPU per fired deadline: the workers 600 µs; PostgreSQL's not measured "
        "(its processes are not on this machine)"
    )


def test_the_http_note_bounds_a_figure_by_its_cpu_on_all_cores(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    writes = {"requests": 10_000, "rate": 1_000.0, "server_cpu_s": 6.0, "postgres_cpu_s": 2.0,
              "loadgen_cpu_s": 0.5}  # fmt: skip
    ceiling = {"requests": 40_000, "rate": 4_000.0, "server_cpu_s": 6.0, "postgres_cpu_s": 4.0,
               "loadgen_cpu_s": 1.0}  # fmt: skip
    note = http_cpu_note("writes", writes, ceiling, 0.60)
    assert note.startswith(
        "writes: CPU per request: the server 600 µs + PostgreSQL 200 µs, wrk 50 µs; "
        "the ceiling app 150 µs + PostgreSQL 100 µs."
    )
    # 2 cores / 800 µs = 2,500 req/s, 62 % of 4,000; 60 % of it is 2,400/s: 833 µs each
    assert note.endswith(
        "at most 2,500 req/s (62% of the ceiling); 60% of the ceiling needs at most 833 µs "
        "a request"
    )


def test_the_http_note_of_sqlite_names_no_other_database() -> None:
    reads = {"requests": 1_000, "rate": 100.0, "server_cpu_s": 0.25, "postgres": False,
             "postgres_cpu_s": None, "loadgen_cpu_s": 0.01}  # fmt: skip
    note = http_cpu_note("eligibility", reads, reads, 0.50)
    assert "the server 250 µs, wrk 10 µs; the ceiling app 250 µs." in note
    assert "PostgreSQL" not in note


def test_the_http_note_counts_postgresql_s_share_even_when_it_is_nothing() -> None:
    constant = {"requests": 1_000, "rate": 100.0, "server_cpu_s": 0.08, "postgres": True,
                "postgres_cpu_s": 0.0, "loadgen_cpu_s": 0.01}  # fmt: skip
    note = http_cpu_note("eligibility", constant, constant, 0.50)
    assert "the ceiling app 80 µs + PostgreSQL 0 µs." in note


def test_the_http_note_says_so_when_postgresql_is_not_on_this_machine() -> None:
    run = {"requests": 1_000, "rate": 100.0, "server_cpu_s": 0.5, "postgres": True,
           "postgres_cpu_s": None, "loadgen_cpu_s": 0.01}  # fmt: skip
    note = http_cpu_note("writes", run, run, 0.60)
    assert "the server 500 µs (PostgreSQL's not measured: its processes are not on this " in note


def test_the_http_note_of_a_run_that_answered_nothing_divides_by_nothing() -> None:
    run = {"requests": 0, "rate": 0.0, "server_cpu_s": 0.5, "postgres_cpu_s": 0.0,
           "loadgen_cpu_s": 0.0}  # fmt: skip
    assert http_cpu_note("writes", run, run, 0.60) == (
        "writes: no CPU per request (no requests answered)"
    )
