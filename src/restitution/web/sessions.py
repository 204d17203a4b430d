"""Web sessions and mediator logins.

A session is a random id in an HTTP-only cookie; the database keeps only its SHA-256, the
party it belongs to, its CSRF token and when it ends. Mediators may also sign in to the
console with a login and a password, kept as an argon2 hash.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from restitution.adapters.db.sessions import (
    delete_expired_sessions,
    delete_session,
    find_mediator_account,
    find_session,
    insert_mediator_account,
    insert_session,
    mediator_account_exists,
)
from restitution.domain.errors import Conflict, InvalidInput, Unauthenticated
from restitution.services.auth import Principal
from restitution.services.context import App

SESSION_TTL = timedelta(hours=12)
_hasher = PasswordHasher()
# Verified against when the login is unknown, so both answers take as long.
_DUMMY_HASH = _hasher.hash("not a password anyone has")


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


@dataclass(frozen=True)
class WebSession:
    principal: Principal
    csrf_token: str
    expires_at: datetime

    def csrf_ok(self, submitted: str | None) -> bool:
        return bool(submitted) and hmac.compare_digest(
            self.csrf_token.encode(), (submitted or "").encode()
        )


def start(
    app: App, principal: Principal, *, until: datetime | None = None
) -> tuple[str, WebSession]:
    """A new session for a party: the cookie value to send and what it stands for. It ends
    after `SESSION_TTL`, or at `until` if sooner: a session opened with a party token must
    not outlive the token."""
    if principal.party_id is None or principal.role not in ("buyer", "seller", "mediator"):
        raise Unauthenticated("party_only", "the portal is for buyers, sellers and mediators")
    now = app.clock.now()
    session_id = secrets.token_urlsafe(32)
    ends = now + SESSION_TTL if until is None else min(now + SESSION_TTL, until)
    session = WebSession(principal, secrets.token_urlsafe(32), ends)
    with app.db.transaction() as conn:
        delete_expired_sessions(conn, now)
        insert_session(
            conn,
            _digest(session_id),
            principal.role,
            principal.party_id,
            session.csrf_token,
            session.expires_at,
            now,
        )
    return session_id, session


def load(app: App, session_id: str | None) -> WebSession | None:
    if not session_id:
        return None
    with app.db.transaction(write=False) as conn:
        row = find_session(conn, _digest(session_id))
    if row is None or row.expires_at <= app.clock.now():
        return None
    return WebSession(Principal(row.role, row.party_id), row.csrf_token, row.expires_at)


def end(app: App, session_id: str | None) -> None:
    if not session_id:
        return
    with app.db.transaction() as conn:
        delete_session(conn, _digest(session_id))


def add_mediator(app: App, login: str, party_id: str, password: str) -> None:
    """Create a console login for a mediator (party id `m_…`)."""
    login, party_id = login.strip(), party_id.strip()
    if not login or not party_id:
        raise InvalidInput("missing_field", "login and party id must not be empty")
    if len(password) < 10:
        raise InvalidInput("weak_password", "the password needs at least 10 characters")
    with app.db.transaction() as conn:
        if mediator_account_exists(conn, login, party_id):
            raise Conflict("account_exists", "that login or mediator already has an account")
        insert_mediator_account(conn, login, party_id, _hasher.hash(password), app.clock.now())


def check_mediator(app: App, login: str, password: str) -> Principal:
    """The mediator whose login and password these are, or Unauthenticated."""
    with app.db.transaction(write=False) as conn:
        row = find_mediator_account(conn, login.strip())
    try:
        _hasher.verify(row.password_hash if row else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        row = None
    if row is None:
        raise Unauthenticated("invalid_login", "The login or the password is not right.")
    return Principal("mediator", row.party_id)
