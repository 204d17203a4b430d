"""Health, and the test clock (only with RESTITUTION_TEST_CLOCK=1, never in production)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import Request

from restitution.api.deps import AppDep, OperatorDep
from restitution.api.routing import api_router
from restitution.api.schemas import LATEST, TestClockIn
from restitution.domain.errors import InvalidInput, NotFound
from restitution.domain.history import format_time
from restitution.services.clock import TestClock
from restitution.services.health import check_database
from restitution.services.outbox import dispatch_all
from restitution.services.worker import clock_tick

router = api_router(tags=["system"])
test_clock_router = api_router(tags=["test clock"])


@router.get("/healthz", summary="Liveness and database check")
def healthz(app: AppDep) -> dict[str, Any]:
    check_database(app)
    return {"status": "ok", "database": "ok"}


def _test_clock(request: Request, app: Any) -> TestClock:
    if not isinstance(app.clock, TestClock):
        raise NotFound("route_not_found", f"no route {request.url.path}")
    return app.clock


@test_clock_router.get("/v1/test/clock", summary="The test clock (RESTITUTION_TEST_CLOCK=1 only)")
def get_clock(request: Request, app: AppDep) -> dict[str, Any]:
    return {"now": format_time(_test_clock(request, app).now())}


@test_clock_router.post("/v1/test/clock", summary="Move the test clock and fire what falls due")
def move_clock(
    request: Request, body: TestClockIn, app: AppDep, principal: OperatorDep
) -> dict[str, Any]:
    clock = _test_clock(request, app)
    if (body.advance_seconds is None) == (body.now is None):
        raise InvalidInput(
            "invalid_clock_move", "give exactly one of advance_seconds and now", param="now"
        )
    try:
        if body.now is not None:
            now = clock.set(body.now)
        else:
            seconds = body.advance_seconds or 0
            if clock.now() + timedelta(seconds=seconds) >= LATEST:
                # Where times in requests stop: date arithmetic beyond it would overflow.
                raise InvalidInput(
                    "clock_out_of_range",
                    f"the test clock stops before {LATEST.year}",
                    param="advance_seconds",
                )
            now = clock.advance(seconds)
    except ValueError as exc:
        raise InvalidInput("clock_backwards", str(exc), param="now") from exc
    # The clock's work as the worker would do it, before answering: deadlines, reminders,
    # refund retries, and the outbox turned into webhook deliveries and e-mails (those are
    # sent by the worker loop, or in `serve` in-process).
    work = clock_tick(app)
    dispatch_all(app)
    return {"now": format_time(now), "processed": work.deadlines, "reminders": work.reminders}
