"""The mediator console, mounted at /console: the review queue, the case review with the
decision form, and the overview of the whole platform."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

from fastapi import FastAPI, Path, Query, Request
from fastapi.responses import Response

from restitution.domain.cases import OPEN_STATUSES, Case
from restitution.domain.errors import DomainError
from restitution.domain.money import Money
from restitution.services import attachments as evidence
from restitution.services import insights
from restitution.services.context import App
from restitution.services.ports import CaseFilter
from restitution.web import cases as case_views
from restitution.web import common, sessions
from restitution.web.common import (
    LOGIN_COOKIE,
    checked_form,
    get_app,
    redirect,
    render,
    session_of,
    signed_in,
    text,
)

Id = Annotated[str, Path(max_length=200)]
Filter = Annotated[str, Query(max_length=200)]


@dataclass(frozen=True)
class Bar:
    label: str
    value: int
    y: int
    width: int


def bar_chart(counts: dict[str, int], width: int = 320) -> tuple[list[Bar], int]:
    """Horizontal bars scaled to the largest count; the template draws them as SVG."""
    top = max(counts.values(), default=0) or 1
    bars = [
        Bar(label.replace("_", " "), value, index * 28, round(value * width / top))
        for index, (label, value) in enumerate(counts.items())
    ]
    return bars, len(bars) * 28


def create_console(app: App, operator_key: str) -> FastAPI:
    web = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    common.install(web, app, operator_key, "console")

    @web.get("/login")
    def login_form(request: Request, token: Annotated[str, Query(max_length=500)] = "") -> Response:
        if token:
            return common.sign_in_with_token(request, token)
        return _login_page(request)

    @web.post("/login")
    async def login(request: Request) -> Response:
        form = await request.form(max_files=0, max_part_size=4096)
        submitted, expected = form.get("csrf_token"), request.cookies.get(LOGIN_COOKIE)
        if not (
            isinstance(submitted, str)
            and expected
            and secrets.compare_digest(submitted.encode(), expected.encode())
        ):
            raise common.CsrfRefused()
        application = get_app(request)
        try:
            principal = sessions.check_mediator(
                application, text(form, "login"), str(form.get("password") or "")
            )
        except DomainError as error:
            return _login_page(request, error.message, text(form, "login"), 401)
        session_id, session = sessions.start(application, principal)
        sessions.end(application, request.cookies.get(common.SESSION_COOKIE))
        response = redirect("/console/")
        common.set_session_cookie(application, response, session_id, session)
        response.delete_cookie(LOGIN_COOKIE, path="/console")
        return response

    @web.post("/logout")
    async def logout(request: Request) -> Response:
        await checked_form(request)
        return common.sign_out(request)

    @web.get("/")
    def queue(
        request: Request,
        status: Filter = "under_review",
        reason: Filter = "",
        seller: Filter = "",
        overdue: Filter = "",
    ) -> Response:
        principal = signed_in(request, "mediator")
        application = get_app(request)
        flt = CaseFilter(
            status=status if status in OPEN_STATUSES or status == "resolved" else None,
            seller_id=seller or None,
            reason=reason or None,
        )
        found = case_views.queue(application, principal, flt)
        now = application.clock.now()
        if overdue:
            found = [c for c in found if c.deadline is not None and c.deadline.due_at <= now]
        return render(
            request,
            "queue.html",
            {
                "title": "Review queue",
                "cases": found,
                "filters": {
                    "status": status,
                    "reason": reason,
                    "seller": seller,
                    "overdue": overdue,
                },
                "statuses": OPEN_STATUSES,
                "requested": {case.id: _requested(case) for case in found},
            },
        )

    @web.get("/overview")
    def overview(request: Request) -> Response:
        signed_in(request, "mediator")
        application = get_app(request)
        figures = insights.overview(application, application.clock.now())
        bars, height = bar_chart(figures.open_by_status)
        return render(
            request,
            "overview.html",
            {"title": "Overview", "o": figures, "bars": bars, "chart_height": height},
        )

    @web.get("/cases/{case_id}")
    def review(request: Request, case_id: Id) -> Response:
        principal = signed_in(request, "mediator")
        application = get_app(request)
        context = case_views.case_page(application, principal, case_id)
        context.update(
            case_views.review_context(application, principal, context["case"], context["order"])
        )
        return render(request, "console_case.html", {**context, "title": f"Review {case_id}"})

    @web.get("/cases/{case_id}/{action}")
    def action_address(request: Request, case_id: Id, action: Id) -> Response:
        """A form's address opened (reloaded after a refusal, or gone back to): the case."""
        signed_in(request, "mediator")
        return redirect(f"/console/cases/{quote(case_id, safe='')}")

    @web.post("/cases/{case_id}/{action}")
    async def act(request: Request, case_id: Id, action: Id) -> Response:
        principal = signed_in(request, "mediator")
        return await case_views.act_and_show(request, principal, case_id, action, "console")

    @web.get("/attachments/{attachment_id}")
    def attachment(request: Request, attachment_id: Id) -> Response:
        principal = signed_in(request, "mediator")
        found = evidence.download(get_app(request), principal, attachment_id)
        return common.inline_attachment(found)

    return web


def _requested(case: Case) -> Money | None:
    """The amount the buyer last asked for."""
    asked = [offer.amount for offer in case.offers if offer.by == "buyer" and offer.amount]
    return asked[-1] if asked else None


def _login_page(
    request: Request, error: str = "", login: str = "", status_code: int = 200
) -> Response:
    if session_of(request) is not None and request.method == "GET":
        return redirect(common.HOME[session_of(request).principal.role])  # type: ignore[union-attr]
    token = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(32)
    response = render(
        request,
        "login.html",
        {"title": "Mediator sign-in", "login_csrf": token, "error": error, "login": login},
        status_code,
    )
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        path="/console",
        httponly=True,
        samesite="strict",
        secure=get_app(request).settings.public_url.startswith("https://"),
    )
    return response
