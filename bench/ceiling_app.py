"""The minimal FastAPI apps that set the HTTP ceilings, served by uvicorn exactly as
`restitution serve` serves Restitution (one process, the same loop and HTTP implementation).

- `POST /insert`: one INSERT per request into the benchmark's own database, done the fastest
  way CEILINGS.md measured: `async def` with the write inline (SQLite: one connection on the
  event loop; PostgreSQL: an async psycopg pool, autocommit).
- `GET /constant`: a constant JSON document of the size of Restitution's eligibility answer
  (`BENCH_CONSTANT_FILE`), already rendered.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Response

from restitution.api.app import fastapi_telemetry

DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "sqlite:///var/bench-ceiling.db")
CONSTANT_FILE = os.environ.get("BENCH_CONSTANT_FILE")
TABLE = "bench_ceiling_inserts"

state: dict[str, Any] = {}


def _sqlite_path(url: str) -> str:
    return url.split(":///", 1)[1]


def _postgres_conninfo(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    if CONSTANT_FILE:
        state["constant"] = Path(CONSTANT_FILE).read_bytes()
    if DATABASE_URL.startswith("sqlite"):
        conn = sqlite3.connect(_sqlite_path(DATABASE_URL), isolation_level=None)
        # Restitution's own settings (adapters/db/engine.py)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {TABLE} (id INTEGER PRIMARY KEY, note TEXT, at TEXT)"
        )
        state["sqlite"] = conn
        yield
        conn.close()
        return
    from psycopg_pool import AsyncConnectionPool

    pool = AsyncConnectionPool(
        _postgres_conninfo(DATABASE_URL), min_size=10, max_size=10, kwargs={"autocommit": True}
    )
    await pool.open()
    async with pool.connection() as conn:
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {TABLE} "
            "(id BIGSERIAL PRIMARY KEY, note TEXT, at TIMESTAMPTZ)"
        )
    state["pool"] = pool
    yield
    await pool.close()


# FastAPI's telemetry as Restitution sets it (off unless a provider is set): the same work per
# request that is not the app's own.
app = FastAPI(lifespan=lifespan, telemetry=fastapi_telemetry())


@app.post("/insert")
async def insert(body: dict[str, Any]) -> dict[str, Any]:
    note = str(body.get("note", ""))
    if "sqlite" in state:
        cursor = state["sqlite"].execute(
            f"INSERT INTO {TABLE} (note, at) VALUES (?, datetime('now'))", (note,)
        )
        return {"id": cursor.lastrowid}
    async with state["pool"].connection() as conn:
        cursor = await conn.execute(
            f"INSERT INTO {TABLE} (note, at) VALUES (%s, now()) RETURNING id", (note,)
        )
        row = await cursor.fetchone()
    return {"id": row[0] if row else None}


@app.get("/constant")
async def constant() -> Response:
    return Response(state["constant"], media_type="application/json")
