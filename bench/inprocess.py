"""CPU per request of Restitution's own code, without sockets: the FastAPI app called as ASGI
in this process, `time.process_time` around many requests (bench/RESULTS.md, rounds 4-5).

Not a figure of the issue's table (those are `make bench`, over HTTP, against the ceilings):
a steadier measure of what a change to the app costs or saves, since the HTTP server, the load
generator and the noise of a shared machine are left out. Compare two checkouts by running it
from each, alternately, on the same machine.

    .venv/bin/python -m bench.inprocess [--orders 60000] [--requests 20000] [--cases 1500]
        [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/DB]

It imports the orders into a fresh database (SQLite in a temporary directory by default; a
PostgreSQL database given by URL is emptied first), then prints µs of CPU per request for
`GET /v1/orders/{id}/eligibility` (random orders, the operator key) and for the write flow of
`make bench` (open, counter-offer, accept with its refund; the in-process worker's outbox
dispatch not included).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import data
from bench.run import BIN, COUNTER_AMOUNT, TOKEN

Scope = dict[str, Any]


def _scope(method: str, path: str, body: bytes) -> Scope:
    headers = [(b"host", b"bench"), (b"authorization", f"Bearer {TOKEN}".encode())]
    if body:
        headers += [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "state": {},
    }


class Client:
    """Requests straight to the ASGI application; answers as (status, JSON)."""

    def __init__(self, api: Any) -> None:
        self.api = api

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        raw = json.dumps(body).encode() if body is not None else b""
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": raw, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await self.api(_scope(method, path, raw), receive, send)
        return sent[0]["status"], sent[1]["body"]

    async def ok(self, method: str, path: str, body: Any = None) -> Any:
        status, answer = await self.call(method, path, body)
        if status >= 300:
            raise RuntimeError(f"{method} {path}: {status} {answer!r}")
        return json.loads(answer)


async def write_flow(client: Client, order_id: str) -> None:
    case = await client.ok("POST", "/v1/cases", data.open_case_body(order_id))
    counter = {
        "kind": "refund",
        "amount": {"amount": COUNTER_AMOUNT, "currency": "USD"},
        "acting_as": "seller",
    }
    await client.ok("POST", f"/v1/cases/{case['id']}/offers", counter)
    await client.ok("POST", f"/v1/cases/{case['id']}/accept", {"acting_as": "buyer"})


def cpu_us(started: float, requests: int) -> float:
    return (time.process_time() - started) / requests * 1e6


async def measure(args: argparse.Namespace) -> None:
    from restitution import cli
    from restitution.api.app import create_api

    api = create_api(cli._build(cli._settings()), TOKEN)
    client = Client(api)
    ids = [f"{data.PREFIX}_{random.randrange(args.orders // 2)}" for _ in range(args.requests)]
    writes_from = args.orders // 2
    async with api.router.lifespan_context(api):
        for order_id in ids[:1000]:  # warm: compiled statements, caches, prepared plans
            await client.ok("GET", f"/v1/orders/{order_id}/eligibility")
        for n in range(100):
            await write_flow(client, f"{data.PREFIX}_{writes_from + n}")
        gc.collect()
        gc.freeze()  # as `restitution serve` does after start-up

        started = time.process_time()
        for order_id in ids:
            await client.ok("GET", f"/v1/orders/{order_id}/eligibility")
        print(f"GET eligibility: {cpu_us(started, len(ids)):.1f} µs CPU per request")

        cases = min(args.cases, args.orders // 2 - 100)
        started = time.process_time()
        for n in range(100, 100 + cases):
            await write_flow(client, f"{data.PREFIX}_{writes_from + n}")
        print(f"case actions:    {cpu_us(started, 3 * cases):.1f} µs CPU per request")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=60_000)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--cases", type=int, default=1_500)
    parser.add_argument("--database-url", help="PostgreSQL (emptied first); default SQLite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="restitution-inprocess-") as work:
        prepare(Path(work), args.orders, args.database_url)
        asyncio.run(measure(args))


def prepare(workdir: Path, orders: int, database_url: str | None = None) -> str:
    """A fresh database (SQLite in `workdir` unless `database_url`, which is emptied) with
    `orders` orders imported, and this process's environment pointed at it; its URL."""
    url = database_url or f"sqlite:///{workdir / 'restitution.db'}"
    os.environ.update(
        RESTITUTION_DATABASE_URL=url,
        RESTITUTION_OPERATOR_KEY=TOKEN,
        RESTITUTION_STORAGE_DIR=str(workdir / "evidence"),
        RESTITUTION_KEY_FILE=str(workdir / "operator_key"),
        RESTITUTION_LOG_LEVEL="warning",
    )
    if database_url:
        _empty_postgres(database_url)
    subprocess.run([str(BIN / "restitution"), "migrate"], check=True, capture_output=True)
    subprocess.run(
        [
            str(BIN / "restitution"), "orders", "import",
            str(data.write_jsonl(workdir / "orders.jsonl", orders)),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return url


def _empty_postgres(url: str) -> None:
    import psycopg

    with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")


if __name__ == "__main__":
    main()
