"""The background loop that moves cases when deadlines pass (in `serve` or `worker`)."""

from __future__ import annotations

import threading

import structlog

from restitution.services.context import App
from restitution.services.deadlines import fire_due

log = structlog.get_logger()


class Sweeper:
    def __init__(self, app: App, interval_seconds: float = 5.0) -> None:
        self.app = app
        self.interval = interval_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> int:
        fired = fire_due(self.app)
        if fired:
            log.info("deadlines_fired", count=fired)
        return fired

    def run_forever(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # a bad row must not stop the clock for every other case
                log.exception("sweeper_failed")
            self._stop.wait(self.interval)

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run_forever, name="sweeper", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
