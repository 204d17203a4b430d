"""On PostgreSQL a route's use case runs in a thread, at most `USE_CASE_THREADS` at once; on
SQLite inline, on the event loop."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from types import SimpleNamespace
from typing import Any

from restitution.api.deps import USE_CASE_THREADS, use_case


def _app(*, sqlite: bool) -> Any:
    return SimpleNamespace(db=SimpleNamespace(is_sqlite=sqlite))


def test_postgresql_use_cases_run_in_threads_at_most_use_case_threads_at_once() -> None:
    lock = threading.Lock()
    running, peak, threads = 0, 0, set()
    all_busy, release = threading.Event(), threading.Event()

    def blocking(n: int) -> int:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
            threads.add(threading.get_ident())
            if running == USE_CASE_THREADS:
                all_busy.set()
        release.wait(timeout=30)
        with lock:
            running -= 1
        return n

    async def main() -> list[int]:
        calls = [use_case(_app(sqlite=False), blocking, n) for n in range(3 * USE_CASE_THREADS)]
        tasks = [asyncio.ensure_future(call) for call in calls]
        assert await asyncio.to_thread(all_busy.wait, 30)
        release.set()
        return list(await asyncio.gather(*tasks))

    results = asyncio.run(main())

    assert results == list(range(3 * USE_CASE_THREADS))
    assert peak == USE_CASE_THREADS
    assert threading.get_ident() not in threads


def test_sqlite_use_cases_run_inline_on_the_event_loop() -> None:
    async def main() -> tuple[int, int]:
        return await use_case(_app(sqlite=True), threading.get_ident), threading.get_ident()

    in_use_case, on_loop = asyncio.run(main())

    assert in_use_case == on_loop


def test_a_use_case_thread_sees_the_requests_context_variables() -> None:
    request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id")

    async def main() -> str:
        request_id.set("req_1")
        return await use_case(_app(sqlite=False), request_id.get)

    assert asyncio.run(main()) == "req_1"
