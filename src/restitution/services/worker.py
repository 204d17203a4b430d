"""The background work, in `restitution worker` or in-process in `restitution serve`.

Two loops, each in its own thread so a slow webhook receiver never delays the clock:
- the clock: fire due deadlines, send due reminders, execute due refund attempts, delete
  the uploads that no case or message used in time;
- messages: dispatch the outbox into deliveries and e-mails, POST due webhooks, send e-mails.
Each loop runs again at once while it finds work, and otherwise waits `interval` seconds.
In `restitution serve` on SQLite the outbox is dispatched on the server's event loop instead
(`Worker.run_on_event_loop`), where the server makes all its other writes.
Many workers may share one PostgreSQL: every step claims its rows with
`FOR UPDATE SKIP LOCKED` (and a lease for network I/O), so nothing is done twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from restitution.services import attachments, emails, outbox, refunds, reminders, webhooks
from restitution.services.context import App
from restitution.services.deadlines import fire_due

log = structlog.get_logger()
# Per tick: a batch of `deadlines.BATCH` for each of the default 4 threads.
DEADLINES_PER_TICK = 800
# Unused uploads deleted per tick at most (`attachments.SWEEP_BATCH` per transaction).
UPLOADS_PER_TICK = 1000
# On the event loop, outbox rows just committed are dispatched after this long, so that the
# rows of the requests meanwhile go in the same batch: each dispatch is a write transaction,
# and one per request would cost the requests more than the notifications gain.
OUTBOX_LINGER_SECONDS = 0.05


@dataclass(frozen=True)
class ClockWork:
    deadlines: int
    reminders: int
    refunds: int
    uploads: int  # unused uploads deleted

    @property
    def total(self) -> int:
        return self.deadlines + self.reminders + self.refunds + self.uploads


def clock_tick(
    app: App, *, deadline_limit: int = 10_000, upload_limit: int = 10_000, threads: int = 1
) -> ClockWork:
    """Deadlines first (as of when each fell due), then reminders for those still ahead, due
    refund attempts, and the uploads left unused too long."""
    now = app.clock.now()
    fired = fire_due(app, now, limit=deadline_limit, threads=threads)
    return ClockWork(
        fired,
        reminders.send_due(app, now),
        refunds.retry_due(app),
        attachments.delete_unused(app, now, limit=upload_limit),
    )


def messages_tick(app: App) -> int:
    return outbox.dispatch(app) + webhooks.deliver_due(app) + emails.send_due(app)


class Worker:
    """The loops in threads. `outbox_on_event_loop`: the outbox is dispatched by
    `run_on_event_loop` instead, on the server's event loop (`restitution serve` on SQLite,
    where the server makes its requests' writes: from a thread of its own, each dispatch made
    the requests wait for the write lock and for the GIL around it, the write benchmark's p99
    76-120 ms against 48-65 ms on the loop; bench/RESULTS.md). The messages thread is woken
    when a dispatch made deliveries or e-mails to send."""

    def __init__(
        self,
        app: App,
        interval_seconds: float | None = None,
        *,
        outbox_on_event_loop: bool = False,
    ) -> None:
        self.app = app
        self.outbox_on_event_loop = outbox_on_event_loop
        self.interval = (
            interval_seconds
            if interval_seconds is not None
            else app.settings.worker_interval_seconds
        )
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.loops: dict[str, Callable[[], int]] = {
            "clock": self._clock,
            "messages": self._messages,
        }
        # Set to run a loop again before its interval is over (and by a stop request).
        self._wake = {name: threading.Event() for name in self.loops}

    def _messages(self) -> int:
        if self.outbox_on_event_loop:
            return webhooks.deliver_due(self.app) + emails.send_due(self.app)
        return messages_tick(self.app)

    async def run_on_event_loop(self) -> None:
        """Dispatch the outbox, a batch per turn of the running event loop, until stopped or
        cancelled (with `outbox_on_event_loop`; otherwise there is nothing to do here).
        Idle, it waits for a commit that wrote outbox rows (`Database.on_outbox_written`,
        from any thread), then `OUTBOX_LINGER_SECONDS`; at most `interval`."""
        if not self.outbox_on_event_loop:
            return
        loop = asyncio.get_running_loop()
        written = asyncio.Event()

        def on_outbox_written() -> None:
            if not written.is_set():
                loop.call_soon_threadsafe(written.set)

        self.app.db.on_outbox_written = on_outbox_written
        try:
            while not self._stop.is_set():
                written.clear()
                try:
                    dispatched = outbox.dispatch_batch(self.app)
                except Exception:  # as in the threads: log it, try again after the interval
                    log.exception("worker_step_failed", loop="outbox")
                    await asyncio.sleep(self.interval)
                    continue
                if dispatched.messages:
                    # Its deliveries and e-mails, without delay. Only then: each wake-up
                    # is two write transactions from another thread, which the requests
                    # on this loop wait for on SQLite (bench/RESULTS.md, round 7).
                    self._wake["messages"].set()
                if dispatched.events:
                    await asyncio.sleep(0)
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(written.wait(), self.interval)
                if written.is_set():
                    await asyncio.sleep(OUTBOX_LINGER_SECONDS)
        finally:
            self.app.db.on_outbox_written = None

    def _clock(self) -> int:
        # A bounded batch per tick: the loop runs again at once while busy, and a stop
        # request (SIGTERM) is honoured between batches, not after every due deadline.
        work = clock_tick(
            self.app,
            deadline_limit=DEADLINES_PER_TICK,
            upload_limit=UPLOADS_PER_TICK,
            threads=self.app.settings.worker_threads,
        )
        if work.total:
            log.info(
                "clock_tick",
                deadlines_fired=work.deadlines,
                reminders_sent=work.reminders,
                refund_attempts=work.refunds,
                unused_uploads_deleted=work.uploads,
            )
        return work.total

    def run_once(self) -> dict[str, int]:
        return {name: step() for name, step in self.loops.items()}

    def _loop(self, name: str, step: Callable[[], int]) -> None:
        wake = self._wake[name]
        while not self._stop.is_set():
            wake.clear()
            try:
                busy = step() > 0
            except Exception:  # one bad row must not stop the work for everything else
                log.exception("worker_step_failed", loop=name)
                busy = False
            if not busy:
                wake.wait(self.interval)

    def start(self) -> None:
        for name, step in self.loops.items():
            thread = threading.Thread(
                target=self._loop, args=(name, step), name=f"worker-{name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def request_stop(self) -> None:
        """Ask the loops to finish their current step and stop (safe from a signal handler)."""
        self._stop.set()
        for wake in self._wake.values():
            wake.set()

    def stop(self) -> None:
        self.request_stop()
        for thread in self._threads:
            thread.join(timeout=30)

    def wait(self) -> None:
        """Block until stopped (Ctrl-C stops)."""
        try:
            while not self._stop.wait(1.0):
                pass
        finally:
            self.stop()
