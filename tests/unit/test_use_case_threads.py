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


async def _turns(count: int = 10) -> None:
    for _ in range(count):
        await asyncio.sleep(0)


def test_a_cancelled_request_waits_for_its_running_use_case_and_drops_a_queued_one() -> None:
    release = threading.Event()
    started, finished = threading.Semaphore(0), []

    def blocking(n: int) -> int:
        started.release()
        release.wait(timeout=30)
        finished.append(n)
        return n

    def queued() -> None:
        finished.append("queued")

    async def main() -> tuple[bool, bool]:
        app = _app(sqlite=False)
        running = [
            asyncio.ensure_future(use_case(app, blocking, n)) for n in range(USE_CASE_THREADS)
        ]
        try:
            for _ in range(USE_CASE_THREADS):  # every thread busy
                assert await asyncio.to_thread(started.acquire, True, 30)
            waiting = asyncio.ensure_future(use_case(app, queued))
            await _turns()  # it is queued behind them
            waiting.cancel()
            running[0].cancel()
            await _turns()  # the cancellations delivered
            dropped_at_once = waiting.done()
            waited_for_its_thread = not running[0].done()
        finally:
            release.set()  # the pool's threads are free again whatever happened
        results = await asyncio.gather(*running, waiting, return_exceptions=True)
        assert all(isinstance(r, asyncio.CancelledError) for r in (results[0], results[-1]))
        return dropped_at_once, waited_for_its_thread

    dropped_at_once, waited_for_its_thread = asyncio.run(main())

    assert dropped_at_once and waited_for_its_thread
    assert "queued" not in finished  # never started
    assert sorted(finished) == list(range(USE_CASE_THREADS))  # the cancelled one ran to its end


def test_a_request_cancelled_again_still_waits_for_its_running_use_case() -> None:
    """A second cancellation (a server told twice to stop) does not abandon the thread:
    nothing the use case does outlives the request's wait for it."""
    release, started = threading.Event(), threading.Event()
    finished: list[str] = []

    def blocking() -> None:
        started.set()
        release.wait(timeout=30)
        finished.append("done")

    async def main() -> tuple[bool, BaseException | None]:
        request = asyncio.ensure_future(use_case(_app(sqlite=False), blocking))
        try:
            assert await asyncio.to_thread(started.wait, 30)
            for _ in range(3):  # cancelled, and cancelled again while it waits
                request.cancel()
                await _turns()
            still_waiting = not request.done()
        finally:
            release.set()
        outcome = (await asyncio.gather(request, return_exceptions=True))[0]
        return still_waiting, outcome

    still_waiting, outcome = asyncio.run(main())

    assert still_waiting
    assert isinstance(outcome, asyncio.CancelledError)
    assert finished == ["done"]
