"""`make bench`: Restitution against this machine's own ceilings, measured in the same run.

For each backend (SQLite, then PostgreSQL) it imports orders with `restitution orders import`
and bulk-inserts the same rows raw; serves Restitution (`restitution serve`) and measures the
eligibility reads and the case-action writes with wrk; measures the server's memory; serves the
minimal ceiling apps (bench/ceiling_app.py) on the same settings and measures them the same way;
on PostgreSQL fires due deadlines with two `restitution worker` processes against pgbench.
Prints one table per backend; `--json FILE` keeps the figures.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import data
from bench.report import Figure, markdown_table

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
BIN = Path(sys.executable).parent
LUA_DIR = BENCH_DIR / "wrk"
TOKEN = "rst_op_bench_operator_key"
POSTGRES_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"
# A database of its own (created if missing, emptied at each run); BENCH_POSTGRES_DATABASE
# lets two runs on one server keep out of each other's way.
POSTGRES_DATABASE = os.environ.get("BENCH_POSTGRES_DATABASE", "restitution_bench")
CONNECTIONS = 32
COUNTER_AMOUNT = 2500  # the seller's counter-offer in the write flow


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_json(
    port: int, method: str, path: str, body: Any = None, token: str = TOKEN
) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    conn.request(method, path, json.dumps(body) if body is not None else None, headers)
    response = conn.getresponse()
    raw = response.read()
    conn.close()
    return response.status, json.loads(raw) if raw else None


def http_raw(port: int, path: str) -> bytes:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", path, headers={"Authorization": f"Bearer {TOKEN}"})
    raw = conn.getresponse().read()
    conn.close()
    return raw


@contextmanager
def serving(command: list[str], env: dict[str, str], port: int, logfile: Path) -> Iterator[int]:
    """Run a server until the block ends; yields its pid once /healthz or /docs answers."""
    with logfile.open("w") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"{command[0]} exited: see {logfile}")
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                    conn.request("GET", "/docs")
                    conn.getresponse().read()
                    conn.close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
            yield process.pid
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def cpu_seconds_of(process: subprocess.Popen[str]) -> tuple[int, float]:
    """Wait for a child; its exit status and the CPU time (user + system) it used."""
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, usage.ru_utime + usage.ru_stime


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def proc_cpu_seconds(pid: int, *, reaped_children: bool = False) -> float:
    """CPU time (user + system) a running process has used so far; with `reaped_children`,
    also that of its children that have exited and been waited for."""
    # The fields after the command's name, which is in parentheses and may hold spaces.
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    if reaped_children:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
    return ticks / CLOCK_TICKS


def postgres_cpu_seconds() -> float:
    """CPU time used so far by the PostgreSQL server on this machine: its processes alive
    now, and those that have exited (counted in the postmaster's reaped children). Its deltas
    are the server's share of a run while nothing else uses it."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            name, _, rest = stat.read_text().rpartition(")")
            if name.endswith("(postgres"):
                parents[int(stat.parent.name)] = int(rest.split()[1])
        except (FileNotFoundError, ProcessLookupError):
            continue
    total = 0.0
    for pid, parent in parents.items():
        try:  # the postmaster: the one not started by another of them
            total += proc_cpu_seconds(pid, reaped_children=parent not in parents)
        except (FileNotFoundError, ProcessLookupError):
            continue  # exited meanwhile: counted in the postmaster's children
    return total


# --------------------------------------------------------------------------- load generator


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    log("wrk is missing: installing it from Debian's packages (apt-get install -y wrk)")
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    subprocess.run(
        [*sudo, "apt-get", "install", "-y", "-qq", "wrk"],
        check=False,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("bench: wrk is needed (apt-get install wrk) and could not be installed")
    return found


def run_wrk(
    wrk: str,
    script: str,
    port: int,
    seconds: float,
    env: dict[str, str],
    *,
    server_pid: int,
    postgres: bool,
) -> dict[str, Any]:
    """One wrk run (1 thread, CONNECTIONS connections); rates count 2xx answers only. Also
    the CPU seconds that wrk, the server (`server_pid`) and, with `postgres`, the PostgreSQL
    server used meanwhile."""
    server_cpu = proc_cpu_seconds(server_pid)
    # None: not measured (SQLite, or a PostgreSQL whose processes are not on this machine)
    postgres_cpu = (postgres_cpu_seconds() or None) if postgres else None
    command = [
        wrk,
        "-t1",
        f"-c{CONNECTIONS}",
        f"-d{int(seconds)}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA_DIR / script),
        f"http://127.0.0.1:{port}",
    ]
    process = subprocess.Popen(
        command,
        env={**os.environ, "BENCH_LUA_DIR": str(LUA_DIR), "BENCH_TOKEN": TOKEN, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stderr is not None
    out = process.stdout.read()
    errors = process.stderr.read()
    code, cpu = cpu_seconds_of(process)
    server_cpu = proc_cpu_seconds(server_pid) - server_cpu
    if postgres_cpu is not None:
        postgres_cpu = postgres_cpu_seconds() - postgres_cpu
    line = next((x for x in out.splitlines() if x.startswith("BENCH_JSON ")), None)
    if code != 0 or line is None:
        raise RuntimeError(f"wrk failed ({code}): {out}\n{errors}")
    result: dict[str, Any] = json.loads(line.removeprefix("BENCH_JSON "))
    duration = result["duration_us"] / 1e6
    result.update(
        rate=result["ok"] / duration,
        p50_ms=result["p50_us"] / 1000,
        p99_ms=result["p99_us"] / 1000,
        loadgen_cpu_s=cpu,
        server_cpu_s=server_cpu,
        postgres=postgres,
        postgres_cpu_s=postgres_cpu,  # None: not measured
        seconds=duration,
        errors_text=errors.strip(),
    )
    if result["bad"] or result["socket_errors"]:
        log(f"  {script}: {result['bad']} non-2xx, {result['socket_errors']} socket errors")
    return result


# --------------------------------------------------------------------------- databases


class Backend:
    def __init__(self, name: str, workdir: Path) -> None:
        self.name = name
        self.workdir = workdir / name
        self.workdir.mkdir(parents=True, exist_ok=True)
        if name == "sqlite":
            self.url = f"sqlite:///{self.workdir / 'restitution.db'}"
        else:
            self.url = f"{POSTGRES_SERVER}/{POSTGRES_DATABASE}"

    @property
    def is_sqlite(self) -> bool:
        return self.name == "sqlite"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "RESTITUTION_DATABASE_URL": self.url,
            "RESTITUTION_OPERATOR_KEY": TOKEN,
            "RESTITUTION_STORAGE_DIR": str(self.workdir / "evidence"),
            "RESTITUTION_KEY_FILE": str(self.workdir / "operator_key"),
        }

    def reset(self) -> None:
        """An empty database at the current schema."""
        if self.is_sqlite:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.url.removeprefix('sqlite:///')}{suffix}").unlink(missing_ok=True)
        else:
            import psycopg

            admin = f"{POSTGRES_SERVER}/postgres".replace("+psycopg", "")
            with psycopg.connect(admin, autocommit=True) as conn:
                exists = conn.execute(
                    "SELECT 1 FROM pg_database WHERE datname = %s", (POSTGRES_DATABASE,)
                ).fetchone()
                if not exists:
                    conn.execute(f"CREATE DATABASE {POSTGRES_DATABASE}")
            with self.connect() as conn:
                conn.execute("DROP SCHEMA public CASCADE")
                conn.execute("CREATE SCHEMA public")
        subprocess.run(
            [str(BIN / "restitution"), "migrate"], env=self.env(), check=True, capture_output=True
        )

    def connect(self) -> Any:
        if self.is_sqlite:
            import sqlite3

            return sqlite3.connect(self.url.removeprefix("sqlite:///"), isolation_level=None)
        import psycopg

        return psycopg.connect(self.url.replace("+psycopg", ""), autocommit=True)


# --------------------------------------------------------------------------- figures


def import_orders(backend: Backend, orders_file: Path, count: int) -> float:
    """Wall-clock orders/s of `restitution orders import FILE`, process start-up included."""
    started = time.perf_counter()
    result = subprocess.run(
        [str(BIN / "restitution"), "orders", "import", str(orders_file)],
        env=backend.env(),
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"orders import failed: {result.stdout}\n{result.stderr[-2000:]}")
    log(f"  {result.stdout.strip()}")
    return count / elapsed


def raw_rows(orders_file: Path) -> list[tuple[Any, ...]]:
    """The orders table's rows for the file, as the driver takes them (JSON as the text
    Restitution writes, `json_text`)."""
    from restitution.adapters.db.engine import json_text

    rows = []
    with orders_file.open(encoding="utf-8") as handle:
        for line in handle:
            o = json.loads(line)
            times = [
                datetime.fromisoformat(o[k]) if o.get(k) else None
                for k in ("placed_at", "shipped_at", "delivered_at", "promised_delivery_by")
            ]
            now = datetime.now(UTC)
            rows.append(
                (
                    o["order_id"],
                    o["buyer_id"],
                    o["seller_id"],
                    o["currency"],
                    *times,
                    o["shipping_amount"],
                    o["payment"]["method"],
                    o["payment"].get("reference"),
                    json_text(o["seller_terms"]),
                    o.get("return_shipping_estimate"),
                    o.get("buyer_country"),
                    json_text(o["lines"]),
                    now,
                    now,
                )
            )
    return rows


RAW_COLUMNS = (
    "order_id, buyer_id, seller_id, currency, placed_at, shipped_at, delivered_at, "
    "promised_delivery_by, shipping_amount, payment_method, payment_reference, seller_terms, "
    "return_shipping_estimate, buyer_country, lines, created_at, updated_at"
)


def raw_insert(backend: Backend, rows: list[tuple[Any, ...]], batch: int = 10_000) -> float:
    """Rows/s of the plainest bulk insert into a copy of the orders table (same indexes):
    COPY on PostgreSQL, executemany on SQLite; one transaction per `batch` rows, as many as
    `restitution orders import` writes in one."""
    with backend.connect() as conn:
        if backend.is_sqlite:
            ddl = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'orders'").fetchone()[0]
            conn.execute("DROP TABLE IF EXISTS orders_raw")
            conn.execute(ddl.replace("orders", "orders_raw", 1))
            for (index_sql,) in conn.execute(
                "SELECT sql FROM sqlite_master WHERE tbl_name = 'orders' AND type = 'index' "
                "AND sql IS NOT NULL"
            ).fetchall():
                conn.execute(
                    index_sql.replace("ix_orders", "ix_orders_raw").replace(
                        " orders ", " orders_raw "
                    )
                )
            sqlite_rows = [
                tuple(
                    v.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
                    if hasattr(v, "astimezone")
                    else v
                    for v in row
                )
                for row in rows
            ]
            marks = ", ".join("?" * len(rows[0]))
            started = time.perf_counter()
            for start in range(0, len(sqlite_rows), batch):
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(
                    f"INSERT INTO orders_raw ({RAW_COLUMNS}) VALUES ({marks})",
                    sqlite_rows[start : start + batch],
                )
                conn.execute("COMMIT")
            return len(rows) / (time.perf_counter() - started)
        conn.execute("DROP TABLE IF EXISTS orders_raw")
        conn.execute("CREATE TABLE orders_raw (LIKE orders INCLUDING ALL)")
        started = time.perf_counter()
        for start in range(0, len(rows), batch):
            with (
                conn.transaction(),
                conn.cursor().copy(f"COPY orders_raw ({RAW_COLUMNS}) FROM STDIN") as copy,
            ):
                for row in rows[start : start + batch]:
                    copy.write_row(row)
        return len(rows) / (time.perf_counter() - started)


def check_write_flow(port: int, order_id: str) -> None:
    """One case through open -> counter -> accept, sequentially: the refund must be settled."""
    status, case = http_json(port, "POST", "/v1/cases", data.open_case_body(order_id))
    assert status == 201, (status, case)
    status, case = http_json(
        port,
        "POST",
        f"/v1/cases/{case['id']}/offers",
        {
            "kind": "refund",
            "amount": {"amount": COUNTER_AMOUNT, "currency": "USD"},
            "acting_as": "seller",
        },
    )
    assert status == 200 and case["status"] == "awaiting_buyer", (status, case)
    status, case = http_json(port, "POST", f"/v1/cases/{case['id']}/accept", {"acting_as": "buyer"})
    # The answer is the case as accepted; the ledger gateway settles the refund right after.
    assert status == 200 and case["status"] in ("refund_pending", "resolved"), (status, case)
    status, refunds = http_json(port, "GET", f"/v1/refunds?case_id={case['id']}")
    assert refunds["data"][0]["status"] == "succeeded", refunds
    status, case = http_json(port, "GET", f"/v1/cases/{case['id']}")
    assert case["status"] == "resolved" and case["outcome"] == "partially_refunded", case


def decisions_per_second(seconds: float) -> float:
    """Eligibility decisions/s in a separate process on one core (bench/decisions.py)."""
    result = subprocess.run(
        [sys.executable, "-m", "bench.decisions", str(seconds)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(result.stdout.strip())


# --------------------------------------------------------------------------- deadlines


def clone_due_cases(backend: Backend, template_case: str, count: int) -> None:
    """`count` copies of one freshly opened case (its order, lines, offer, event and D1
    deadline), each deadline due a day ago: the sweeper's work without days of waiting."""
    from restitution.adapters.db import tables as t

    def clone(table: Any, replace: dict[str, str], where: str) -> str:
        columns = [
            c.name for c in table.columns if not (c.name == "id" and c.autoincrement is True)
        ]
        select = ", ".join(replace.get(c, f'"{c}"') for c in columns)
        names = ", ".join(f'"{c}"' for c in columns)
        return (
            f"INSERT INTO {table.name} ({names}) SELECT {select} "
            f"FROM {table.name}, generate_series(1, {count}) AS g WHERE {where}"
        )

    suffix = "|| '_' || g"
    due_json = (
        "jsonb_set(deadline::jsonb, '{due_at}', to_jsonb(to_char((now() - interval '1 day') "
        "AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')))::json"
    )
    with backend.connect() as conn, conn.transaction():
        order_id = conn.execute(
            "SELECT order_id FROM cases WHERE id = %s", (template_case,)
        ).fetchone()[0]
        conn.execute(
            clone(t.orders, {"order_id": f"order_id {suffix}"}, f"order_id = '{order_id}'")
        )
        conn.execute(
            clone(
                t.cases,
                {"id": f"id {suffix}", "order_id": f"order_id {suffix}", "deadline": due_json},
                f"id = '{template_case}'",
            )
        )
        conn.execute(
            clone(
                t.case_lines,
                {"case_id": f"case_id {suffix}", "order_id": f"order_id {suffix}"},
                f"case_id = '{template_case}'",
            )
        )
        for table in (t.offers, t.events):
            conn.execute(
                clone(
                    table,
                    {"id": f"id {suffix}", "case_id": f"case_id {suffix}"},
                    f"case_id = '{template_case}'",
                )
            )
        conn.execute(
            clone(
                t.deadlines,
                {"case_id": f"case_id {suffix}", "due_at": "now() - interval '1 day'"},
                f"case_id = '{template_case}' AND fired_at IS NULL AND cleared_at IS NULL",
            )
        )
    with backend.connect() as conn:
        conn.execute("ANALYZE")
    checkpoint(backend)


def checkpoint(backend: Backend) -> None:
    """Flush what the set-up wrote (1M orders imported twice, 100,000 cases cloned: ~540 MB
    of WAL per checkpoint here) before a measured run, as pgbench's documentation advises:
    otherwise the checkpoint it triggers lands in the run, and every page first changed
    after it is written to the WAL whole (bench/RESULTS.md, round 8)."""
    with backend.connect() as conn:
        conn.execute("CHECKPOINT")


@dataclass(frozen=True)
class Run:
    """A timed run of a database's work: how much it did, per second, and the CPU time
    (seconds) the clients (the workers, or pgbench) and the PostgreSQL server used for it."""

    done: int
    rate: float
    clients_cpu_s: float
    postgres_cpu_s: float

    def cpu_us_each(self) -> tuple[float, float]:
        """µs of CPU per unit done: the clients', the server's."""
        done = max(self.done, 1)
        return self.clients_cpu_s / done * 1e6, self.postgres_cpu_s / done * 1e6


def fire_deadlines(backend: Backend, template_case: str, count: int, limit_s: float) -> Run:
    """Deadlines fired/s by two `restitution worker` processes; stops at `limit_s`."""
    env = {**backend.env(), "RESTITUTION_WORKER_INTERVAL_SECONDS": "0.2"}
    logs = [backend.workdir / f"worker{n}.log" for n in (1, 2)]
    handles = [path.open("w") for path in logs]
    workers = [
        subprocess.Popen(
            [str(BIN / "restitution"), "worker"], env=env, stdout=h, stderr=subprocess.STDOUT
        )
        for h in handles
    ]
    pattern = f"{template_case}\\_%"
    query = "SELECT count(*) FROM deadlines WHERE fired_at IS NOT NULL AND case_id LIKE %s"
    try:
        while not all("worker running" in path.read_text() for path in logs):
            if any(w.poll() is not None for w in workers):
                raise RuntimeError(f"a worker exited: see {logs}")
            time.sleep(0.05)
        started = time.perf_counter()
        workers_cpu = sum(proc_cpu_seconds(w.pid) for w in workers)
        postgres_cpu = postgres_cpu_seconds()
        fired = 0
        with backend.connect() as conn:
            while True:
                time.sleep(0.25)
                fired = conn.execute(query, (pattern,)).fetchone()[0]
                elapsed = time.perf_counter() - started
                if fired >= count or elapsed >= limit_s:
                    break
        return Run(
            fired,
            fired / elapsed,
            sum(proc_cpu_seconds(w.pid) for w in workers) - workers_cpu,
            postgres_cpu_seconds() - postgres_cpu,
        )
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
        for h in handles:
            h.close()


def pgbench_insert_tps(backend: Backend, seconds: int) -> Run:
    with backend.connect() as conn:
        conn.execute("DROP TABLE IF EXISTS bench_pgbench")
        conn.execute("CREATE TABLE bench_pgbench (id BIGSERIAL PRIMARY KEY, v INTEGER)")
    checkpoint(backend)
    script = backend.workdir / "insert.sql"
    script.write_text("INSERT INTO bench_pgbench (v) VALUES (1);\n")
    postgres_cpu = postgres_cpu_seconds()
    process = subprocess.Popen(
        ["pgbench", "-n", "-c", "4", "-j", "2", "-T", str(seconds), "-f", str(script),
         "-h", "127.0.0.1", "-U", "postgres", POSTGRES_DATABASE],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # one pipe, read to its end: two could block each other
        text=True,
    )  # fmt: skip
    assert process.stdout is not None
    out = process.stdout.read()
    code, pgbench_cpu = cpu_seconds_of(process)
    postgres_cpu = postgres_cpu_seconds() - postgres_cpu
    if code != 0:
        raise RuntimeError(f"pgbench failed ({code}): {out}")
    facts = dict(line.split(" = ", 1) for line in out.splitlines() if " = " in line)
    done = re.search(r"^number of transactions actually processed: (\d+)", out, re.M)
    if "tps" not in facts or done is None:
        raise RuntimeError(out)
    return Run(int(done.group(1)), float(facts["tps"].split()[0]), pgbench_cpu, postgres_cpu)


def cpu_note(fired: Run, pgbench: Run) -> str:
    """What a fired deadline and a pgbench insert cost in CPU, and the most deadlines per
    second PostgreSQL's share alone leaves on this machine's cores."""
    workers, server = fired.cpu_us_each()
    client, server_per_insert = pgbench.cpu_us_each()
    if server <= 0:
        return (
            f"CPU per fired deadline: the workers {workers:,.0f} µs; PostgreSQL's not measured "
            "(its processes are not on this machine)"
        )
    cores = len(os.sched_getaffinity(0))
    most = cores * 1e6 / server
    return (
        f"CPU per fired deadline: the workers {workers:,.0f} µs, PostgreSQL {server:,.0f} µs; "
        f"per pgbench insert: pgbench {client:,.0f} µs, PostgreSQL {server_per_insert:,.0f} µs. "
        f"With workers that cost nothing, PostgreSQL's share alone would fire at most "
        f"{most:,.0f} deadlines/s on {cores} cores ({most / pgbench.rate:.0%} of the ceiling)"
    )


def http_cpu_note(name: str, run: dict[str, Any], ceiling: dict[str, Any], goal: float) -> str:
    """What a request of `run` and of its `ceiling` cost in CPU (the server's, PostgreSQL's,
    wrk's), and the most requests per second that work allows on this machine's cores even
    if it were spread over all of them and the load generator cost nothing."""

    def each(result: dict[str, Any], key: str) -> float:
        return float(result[key] or 0.0) / max(int(result["requests"]), 1) * 1e6

    def cost(result: dict[str, Any]) -> str:
        text = f"{each(result, 'server_cpu_s'):,.0f} µs"
        if result["postgres_cpu_s"] is not None:
            text += f" + PostgreSQL {each(result, 'postgres_cpu_s'):,.0f} µs"
        elif result.get("postgres"):
            text += " (PostgreSQL's not measured: its processes are not on this machine)"
        return text

    if ceiling["rate"] <= 0 or run["requests"] <= 0:
        return f"{name}: no CPU per request (no requests answered)"
    cores = len(os.sched_getaffinity(0))
    ours = each(run, "server_cpu_s") + each(run, "postgres_cpu_s")
    most = cores * 1e6 / ours
    needed = cores * 1e6 / (goal * ceiling["rate"])
    return (
        f"{name}: CPU per request: the server {cost(run)}, wrk {each(run, 'loadgen_cpu_s'):,.0f} "
        f"µs; the ceiling app {cost(ceiling)}. Spread over all {cores} cores, with wrk costing "
        f"nothing, this work allows at most {most:,.0f} req/s ({most / ceiling['rate']:.0%} of "
        f"the ceiling); {goal:.0%} of the ceiling needs at most {needed:,.0f} µs a request"
    )


# --------------------------------------------------------------------------- one backend


def bench_backend(
    backend: Backend, wrk: str, orders_file: Path, count: int, args: argparse.Namespace
) -> tuple[list[Figure], dict[str, Any]]:
    log(f"{backend.name}: fresh database")
    backend.reset()
    log(f"{backend.name}: restitution orders import ({count:,} orders)")
    imported = import_orders(backend, orders_file, count)
    log(f"{backend.name}: raw bulk insert of the same rows")
    raw = raw_insert(backend, raw_rows(orders_file))
    log(f"  import {imported:,.0f}/s, raw {raw:,.0f}/s")

    port = free_port()
    command = [str(BIN / "restitution"), "serve", "--host", "127.0.0.1", "--port", str(port)]
    if not backend.is_sqlite:
        command.append("--no-sweeper")  # the PostgreSQL deployment of the README
    seconds = args.seconds
    writes_from = count // 2  # reads use the orders below, writes those above
    extra: dict[str, Any] = {}
    with serving(command, backend.env(), port, backend.workdir / "serve.log") as pid:
        on_server: dict[str, Any] = {"server_pid": pid, "postgres": not backend.is_sqlite}
        constant = http_raw(port, f"/v1/orders/{data.PREFIX}_0/eligibility")
        constant_file = backend.workdir / "eligibility.json"
        constant_file.write_bytes(constant)
        check_write_flow(port, f"{data.PREFIX}_{count - 1}")
        template_case = None
        if not backend.is_sqlite:
            status, case = http_json(
                port, "POST", "/v1/cases", data.open_case_body(f"{data.PREFIX}_{count - 2}")
            )
            assert status == 201, case
            template_case = case["id"]
        log(f"{backend.name}: GET eligibility, {seconds:.0f} s")
        reads = run_wrk(
            wrk,
            "get.lua",
            port,
            seconds,
            {
                "BENCH_PATH": "/v1/orders/BENCH_ID/eligibility",
                "BENCH_PREFIX": data.PREFIX,
                "BENCH_COUNT": str(min(writes_from, 50_000)),
            },
            **on_server,
        )
        log(f"  {reads['rate']:,.0f} req/s, p99 {reads['p99_ms']:.1f} ms")
        log(f"{backend.name}: case actions, {seconds:.0f} s")
        writes = run_wrk(
            wrk,
            "case_flow.lua",
            port,
            seconds,
            {
                "BENCH_PREFIX": data.PREFIX,
                "BENCH_FIRST": str(writes_from),
                "BENCH_PER_THREAD": str(count // 2 - 10),
                "BENCH_FULL_REFUND": str(data.FULL_REFUND),
                "BENCH_COUNTER_AMOUNT": str(COUNTER_AMOUNT),
            },
            **on_server,
        )
        log(
            f"  {writes['rate']:,.0f} req/s, p50 {writes['p50_ms']:.1f} ms, "
            f"p99 {writes['p99_ms']:.1f} ms, {writes['resolved']} cases refunded"
        )
        memory = rss_mb(pid)
        log(f"  server RSS {memory:.0f} MB")
    extra.update(reads=reads, writes=writes, eligibility_bytes=len(constant))

    port = free_port()
    ceiling_env = {
        **os.environ,
        "BENCH_DATABASE_URL": backend.url,
        "BENCH_CONSTANT_FILE": str(constant_file),
    }
    command = [
        sys.executable, "-m", "uvicorn", "bench.ceiling_app:app",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
    ]  # fmt: skip
    with serving(command, ceiling_env, port, backend.workdir / "ceiling.log") as ceiling_pid:
        on_server = {"server_pid": ceiling_pid, "postgres": not backend.is_sqlite}
        log(f"{backend.name}: ceiling, one INSERT per request, {seconds:.0f} s")
        insert_ceiling = run_wrk(
            wrk, "post.lua", port, seconds, {"BENCH_PATH": "/insert"}, **on_server
        )
        log(f"  {insert_ceiling['rate']:,.0f} req/s, p99 {insert_ceiling['p99_ms']:.1f} ms")
        log(f"{backend.name}: ceiling, constant JSON of {len(constant)} bytes, {seconds:.0f} s")
        constant_ceiling = run_wrk(
            wrk,
            "get.lua",
            port,
            seconds,
            {"BENCH_PATH": "/constant", "BENCH_COUNT": "1"},
            **on_server,
        )
        log(f"  {constant_ceiling['rate']:,.0f} req/s")
    extra.update(
        insert_ceiling=insert_ceiling,
        constant_ceiling=constant_ceiling,
        http_cpu=[
            http_cpu_note("writes", writes, insert_ceiling, 0.60),
            http_cpu_note("eligibility", reads, constant_ceiling, 0.50),
        ],
    )

    scaled = "" if count == 1_000_000 else f"{count:,} orders, scaled from 1,000,000"
    figures = [
        Figure(
            "case-action writes over HTTP",
            "req/s",
            writes["rate"],
            insert_ceiling["rate"],
            min_ratio=0.60,
            note="open, counter, accept + refund; 32 clients",
        ),
        Figure("case-action writes p50 latency", "ms", writes["p50_ms"]),
        Figure("case-action writes p99 latency", "ms", writes["p99_ms"], below=50),
        Figure(
            "GET /v1/orders/{id}/eligibility",
            "req/s",
            reads["rate"],
            constant_ceiling["rate"],
            min_ratio=0.50,
        ),
    ]
    if template_case is not None:
        log(f"{backend.name}: {args.deadlines:,} due deadlines")
        clone_due_cases(backend, template_case, args.deadlines)
        log(f"{backend.name}: two workers fire them (at most {args.deadline_seconds:.0f} s)")
        fired = fire_deadlines(backend, template_case, args.deadlines, args.deadline_seconds)
        log(f"  {fired.done:,} fired, {fired.rate:,.0f}/s")
        log(f"{backend.name}: pgbench single-row insert, 4 clients")
        pgbench = pgbench_insert_tps(backend, int(seconds))
        log(f"  {pgbench.rate:,.0f} tps")
        note = f"{args.deadlines:,} due, 2 workers"
        if fired.done < args.deadlines:
            note += f"; {fired.done:,} fired in the {args.deadline_seconds:.0f} s limit"
        figures.append(
            Figure("deadlines fired", "/s", fired.rate, pgbench.rate, min_ratio=0.50, note=note)
        )
        extra.update(
            deadlines_fired=fired.done,
            pgbench_tps=pgbench.rate,
            deadlines_cpu=cpu_note(fired, pgbench),
        )
    else:
        figures.append(
            Figure("deadlines fired", "/s", None, note="PostgreSQL only: see that table")
        )
    figures += [
        Figure(
            "orders imported (restitution orders import)",
            "orders/s",
            imported,
            raw,
            min_ratio=0.50,
            at_least=20_000,
            note=scaled,
        ),
        Figure("server resident memory after the writes", "MB", memory, below=150),
    ]
    return figures, extra


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--orders", type=int, default=1_000_000, help="orders to import")
    parser.add_argument("--seconds", type=float, default=10, help="length of each HTTP run")
    parser.add_argument("--deadlines", type=int, default=100_000, help="due deadlines")
    parser.add_argument("--deadline-seconds", type=float, default=45, help="limit for firing them")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    started = time.perf_counter()
    wrk = ensure_wrk()
    wrk_version = subprocess.run([wrk, "--version"], capture_output=True, text=True).stdout
    workdir = Path(tempfile.mkdtemp(prefix="restitution-bench-"))
    orders_file = workdir / "orders.jsonl"
    log(f"writing {args.orders:,} orders to {orders_file}")
    data.write_jsonl(orders_file, args.orders)

    log("eligibility decisions in-process, one core")
    decisions = decisions_per_second(3.0)
    log(f"  {decisions:,.0f}/s")
    decision_figure = Figure(
        "eligibility decisions in-process (one core)", "/s", decisions, at_least=100_000
    )

    results: dict[str, Any] = {}
    for name in args.backends.split(","):
        backend = Backend(name, workdir)
        figures, extra = bench_backend(backend, wrk, orders_file, args.orders, args)
        figures.insert(len(figures) - 1, decision_figure)
        results[name] = {
            "figures": [f.__dict__ | {"ratio": f.ratio, "passed": f.passed} for f in figures],
            **extra,
        }
        results[name]["table"] = markdown_table(figures)

    total = time.perf_counter() - started
    print()
    loadgen = wrk_version.splitlines()[0] if wrk_version else "wrk"
    for name, result in results.items():
        print(f"## {name}\n")
        print(result["table"])
        cpu = sum(
            result[key]["loadgen_cpu_s"]
            for key in ("reads", "writes", "insert_ceiling", "constant_ceiling")
        )
        wall = sum(
            result[key]["seconds"]
            for key in ("reads", "writes", "insert_ceiling", "constant_ceiling")
        )
        print(
            f"\nload generator: {loadgen.strip()}, 1 thread, {CONNECTIONS} connections, Lua "
            f"scripts in bench/wrk/; it used {cpu:.1f} s CPU over {wall:.0f} s of load "
            f"({cpu / wall:.0%} of one core)\n"
        )
        for note in result["http_cpu"]:
            print(f"{note}\n")
        if "deadlines_cpu" in result:
            print(f"deadlines: {result['deadlines_cpu']}\n")
    print(f"total {total:.0f} s; work files in {workdir}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    shutil.rmtree(workdir / "sqlite", ignore_errors=True)
    orders_file.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
