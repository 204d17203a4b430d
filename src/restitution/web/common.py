"""What every page shares: templates, the session behind a request, CSRF, error pages."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import psycopg
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy.exc import DataError
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from restitution import __version__
from restitution.adapters.db.engine import unavailable, unavailable_errors
from restitution.api.errors import RETRY_AFTER_SECONDS, STATUS_BY_KIND
from restitution.api.schemas import MAX_TEXT
from restitution.domain.eligibility import REASON_NAMES
from restitution.domain.errors import DomainError, InvalidInput, PolicyViolation
from restitution.domain.policy import Clause
from restitution.services import attachments, insights
from restitution.services.auth import Principal, token_holder
from restitution.services.context import App
from restitution.web import sessions
from restitution.web.format import Viewer, major_units

SESSION_COOKIE = "restitution_session"
LOGIN_COOKIE = "restitution_login_csrf"
HTMX = "htmx-2.0.11.min.js"

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")
TEMPLATES.env.globals.update(
    reason_name=lambda reason: REASON_NAMES.get(reason, reason.replace("_", " ")),
    status_name=lambda status: status.replace("_", " "),
    major_units=major_units,
    htmx=HTMX,
    version=__version__,
)
TEMPLATES.env.trim_blocks = True
TEMPLATES.env.lstrip_blocks = True

HOME = {"buyer": "/portal/orders", "seller": "/portal/cases", "mediator": "/console/"}
log = structlog.get_logger()

STATUS_TITLES = {
    400: "That did not work",
    401: "Please sign in",
    403: "Not allowed",
    404: "Not found",
    409: "That is not possible now",
    422: "That is not possible",
    503: "Please try again in a moment",
}

PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' blob:; media-src 'self' blob:; "
        "style-src 'self'; script-src 'self'; object-src 'none'; frame-ancestors 'none'; "
        "base-uri 'none'; form-action 'self'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class SignInNeeded(Exception):
    """No valid session: buyers and sellers need a fresh link, mediators the login form."""


class WrongArea(Exception):
    """A party signed in for the portal asked for the console, or the other way round."""


class CsrfRefused(Exception):
    pass


def get_app(request: Request) -> App:
    app: App = request.app.state.restitution
    return app


def session_of(request: Request) -> sessions.WebSession | None:
    if not hasattr(request.state, "web_session"):
        request.state.web_session = sessions.load(
            get_app(request), request.cookies.get(SESSION_COOKIE)
        )
    found: sessions.WebSession | None = request.state.web_session
    return found


def signed_in(request: Request, *roles: str) -> Principal:
    """The party behind this request, who must have one of `roles`."""
    session = session_of(request)
    if session is None:
        raise SignInNeeded()
    if session.principal.role not in roles:
        raise WrongArea()
    return session.principal


async def checked_form(request: Request) -> FormData:
    """The posted form, once its CSRF token has been checked against the session's."""
    form = await request.form(max_files=20, max_part_size=64 * 1024)
    session = session_of(request)
    token = form.get("csrf_token")
    if session is None or not session.csrf_ok(token if isinstance(token, str) else None):
        raise CsrfRefused()
    return form


def text(form: FormData, name: str, default: str = "", *, max_length: int = MAX_TEXT) -> str:
    """A form's text field, within the bounds the API puts on the same field."""
    value = form.get(name)
    if not isinstance(value, str):
        return default
    if "\x00" in value:  # PostgreSQL cannot store it: refused on every backend alike (as the API)
        raise InvalidInput("invalid_field", "The text must not contain NUL characters.", param=name)
    if len(value) > max_length:
        raise InvalidInput(
            "too_long", f"The text may be at most {max_length} characters long.", param=name
        )
    return value.strip()


def files(form: FormData, name: str = "evidence") -> list[UploadFile]:
    return [f for f in form.getlist(name) if isinstance(f, UploadFile) and f.filename]


async def upload_all(app: App, principal: Principal, uploads: list[UploadFile]) -> tuple[str, ...]:
    """Store each posted photo or video as evidence (typed from its bytes)."""
    ids = []
    for upload in uploads:
        data = await upload.read(app.settings.max_upload_bytes + 1)
        ids.append(attachments.upload(app, principal, data, upload.filename).id)
    return tuple(ids)


def viewer(request: Request) -> Viewer:
    app = get_app(request)
    session = session_of(request)
    now = app.clock.now()
    if session is None or session.principal.party_id is None:
        return Viewer.of(now, None, None)
    prefs = insights.preferences(app, session.principal.role, session.principal.party_id)
    return Viewer.of(now, prefs.locale, prefs.time_zone)


def clauses(app: App, ids: Any) -> list[Clause]:
    found = []
    for clause_id in dict.fromkeys(ids or ()):
        try:
            found.append(app.policy.clause(clause_id))
        except KeyError:
            found.append(Clause(clause_id, ""))
    return found


def render(
    request: Request, name: str, context: dict[str, Any], status_code: int = 200
) -> HTMLResponse:
    session = session_of(request)
    base: dict[str, Any] = {
        "session": session,
        "principal": session.principal if session else None,
        "csrf_token": session.csrf_token if session else "",
        "v": viewer(request),
        "path": request.url.path,
    }
    response = TEMPLATES.TemplateResponse(request, name, {**base, **context}, status_code)
    response.headers.update(PAGE_HEADERS)
    return response


def error_page(request: Request, status: int, message: str, **extra: Any) -> HTMLResponse:
    return render(
        request,
        "error.html",
        {"title": STATUS_TITLES.get(status, "Something went wrong"), "message": message, **extra},
        status,
    )


def domain_error_status(error: DomainError) -> int:
    return STATUS_BY_KIND.get(error.kind, 400)


def refusal(request: Request, error: DomainError) -> dict[str, Any]:
    """A refusal as a page shows it: the sentence, with the amount it names written as the
    reader writes money ("$20.34", not "20.34 USD"), and, for policy refusals, the clauses."""
    message = error.message
    if error.money is not None:
        message = message.replace(str(error.money), viewer(request).money(error.money))
    cited = error.clauses if isinstance(error, PolicyViolation) else ()
    return {"message": message, "code": error.code, "clauses": clauses(get_app(request), cited)}


def set_session_cookie(
    app: App, response: Response, session_id: str, session: sessions.WebSession
) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        session_id,
        max_age=int((session.expires_at - app.clock.now()).total_seconds()),
        path="/",
        httponly=True,
        samesite="lax",
        secure=app.settings.public_url.startswith("https://"),
    )


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def install(web: FastAPI, app: App, operator_key: str, area: str) -> None:
    """State, security headers and friendly error pages for one web area (portal, console)."""
    web.state.restitution = app
    web.state.operator_key = operator_key
    web.state.area = area

    @web.exception_handler(SignInNeeded)
    async def sign_in(request: Request, exc: SignInNeeded) -> Response:
        if area == "console" and request.method == "GET":
            return redirect("/console/login")
        return error_page(
            request,
            401,
            "Your session has ended. Open the link from the marketplace again to sign in.",
        )

    @web.exception_handler(WrongArea)
    async def wrong_area(request: Request, exc: WrongArea) -> Response:
        session = session_of(request)
        home = HOME.get(session.principal.role, "/") if session else "/"
        return error_page(
            request, 403, "This part of Restitution is not for your account.", home=home
        )

    @web.exception_handler(CsrfRefused)
    async def csrf(request: Request, exc: CsrfRefused) -> Response:
        return error_page(
            request,
            403,
            "This form had expired or did not come from this site, so nothing was changed. "
            "Go back, reload the page and try again.",
        )

    @web.exception_handler(DomainError)
    async def domain(request: Request, exc: DomainError) -> Response:
        status = domain_error_status(exc)
        if status == 404:
            return error_page(request, 404, "There is nothing here, or it is not yours to see.")
        shown = refusal(request, exc)
        return error_page(request, status, shown["message"], refusal=shown)

    @web.exception_handler(RequestValidationError)
    async def invalid_address(request: Request, exc: RequestValidationError) -> Response:
        # Only a page's path and query are validated (forms are read by the routes).
        return error_page(request, 400, "The address of this page is not valid.")

    @web.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return error_page(request, 404, "There is nothing here, or it is not yours to see.")
        return error_page(request, exc.status_code, str(exc.detail))

    async def database_error(request: Request, exc: Exception) -> Response:
        if not unavailable(exc):
            raise exc  # a bug: the server's error page
        log.warning("database_unavailable", path=request.url.path, error_type=type(exc).__name__)
        if not hasattr(request.state, "web_session"):  # not read yet: it cannot be now
            request.state.web_session = None
        page = error_page(
            request,
            503,
            "Restitution cannot reach its database right now. Try again in a moment; if you "
            "had sent a form, check whether it went through before you send it again.",
        )
        page.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return page

    for error_type in unavailable_errors():
        web.add_exception_handler(error_type, database_error)

    async def data_error(request: Request, exc: Exception) -> Response:
        # The database refused a value from the request (e.g. NUL in an address, on PostgreSQL).
        log.info("data_error", path=request.url.path, error=str(getattr(exc, "orig", exc)))
        return error_page(request, 400, "A value in this request cannot be stored.")

    # SQLAlchemy's, and the driver's own (as the API's).
    for refused in (DataError, psycopg.DataError):
        web.add_exception_handler(refused, data_error)

    @web.middleware("http")
    async def headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        for key, value in PAGE_HEADERS.items():
            response.headers.setdefault(key, value)
        return response


def sign_in_with_token(request: Request, token: str) -> Response:
    """A party arrives through a `portal_url`: swap its token for a session, then drop it."""
    app = get_app(request)
    try:
        principal, valid_until = token_holder(app, request.app.state.operator_key, token or None)
        session_id, session = sessions.start(app, principal, until=valid_until)
    except DomainError as error:
        return error_page(
            request,
            401,
            f"{error.message[:1].upper()}{error.message[1:]}. "
            "Open the link from the marketplace again, or ask it for a new one.",
        )
    sessions.end(app, request.cookies.get(SESSION_COOKIE))
    response = redirect(HOME[session.principal.role])
    set_session_cookie(app, response, session_id, session)
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def sign_out(request: Request) -> Response:
    sessions.end(get_app(request), request.cookies.get(SESSION_COOKIE))
    request.state.web_session = None
    response = render(request, "signed_out.html", {"title": "Signed out"})
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def inline_attachment(found: attachments.Download) -> Response:
    """Evidence shown in the page: inline, sandboxed, never sniffed."""
    return Response(
        found.data,
        media_type=found.row.content_type,
        headers={
            "Content-Disposition": "inline",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "private, max-age=3600",
        },
    )
