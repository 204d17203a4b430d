"""`Idempotency-Key` on every POST: the same key and body replay the first response;
the same key with another body is a 409 `idempotency_conflict`, and while the first request
is still running, a 409 `idempotency_in_progress`."""

from __future__ import annotations

import hashlib
import json

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from restitution.api.deps import get_principal
from restitution.api.errors import error_body
from restitution.domain.errors import Unauthenticated
from restitution.services import idempotency
from restitution.services.context import App

MAX_KEY_LENGTH = 255


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        key = headers.get(b"idempotency-key", b"").decode("latin-1").strip()
        if not key:
            await self.app(scope, receive, send)
            return
        if len(key) > MAX_KEY_LENGTH:
            await _send_json(
                send,
                400,
                error_body(
                    "invalid_request",
                    "invalid_idempotency_key",
                    f"Idempotency-Key may be at most {MAX_KEY_LENGTH} characters",
                    "Idempotency-Key",
                ),
            )
            return
        if not await _authenticates(scope):
            # Kept responses are for a caller who can still say who they are: a token that is
            # missing, unknown or expired gets the route's 401, never a response kept for it.
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        restitution: App = scope["app"].state.restitution
        principal = hashlib.sha256(headers.get(b"authorization", b"")).hexdigest()
        request_hash = hashlib.sha256(
            scope["path"].encode() + b"\n" + scope.get("query_string", b"") + b"\n" + body
        ).hexdigest()
        stored = idempotency.reserve(restitution, principal, key, request_hash)
        if stored is not None:
            if stored.request_hash != request_hash:
                await _send_json(
                    send,
                    409,
                    error_body(
                        "conflict",
                        "idempotency_conflict",
                        "this Idempotency-Key was used with a different request",
                        "Idempotency-Key",
                    ),
                )
            elif stored.status_code == idempotency.IN_PROGRESS:
                await _send_json(
                    send,
                    409,
                    error_body(
                        "conflict",
                        "idempotency_in_progress",
                        "a request with this Idempotency-Key is still being processed; send it "
                        "again once it has answered",
                        "Idempotency-Key",
                    ),
                )
            else:
                await _send_raw(send, stored.status_code, stored.body.encode(), replayed=True)
            return

        captured = _Captured()

        async def replay_receive() -> Message:
            return {"type": "http.request", "body": body, "more_body": False}

        async def capture_send(message: Message) -> None:
            captured.take(message)
            await send(message)

        try:
            await self.app(scope, replay_receive, capture_send)
        finally:
            if captured.status < 500 and captured.is_json:
                response = idempotency.StoredResponse(
                    request_hash, captured.status, captured.body.decode()
                )
                idempotency.keep(restitution, principal, key, response)
            else:
                idempotency.release(restitution, principal, key)


class _Captured:
    """The response as it streams past, kept to be replayed."""

    def __init__(self) -> None:
        self.status = 500
        self.is_json = False
        self.body = b""

    def take(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            headers = dict(message.get("headers", []))
            self.is_json = headers.get(b"content-type", b"").startswith(b"application/json")
        elif message["type"] == "http.response.body":
            self.body += message.get("body", b"")


async def _authenticates(scope: Scope) -> bool:
    try:
        await get_principal(Request(scope))
    except Unauthenticated:
        return False
    return True


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _send_raw(send: Send, status: int, body: bytes, *, replayed: bool = False) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if replayed:
        headers.append((b"idempotent-replayed", b"true"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _send_json(send: Send, status: int, payload: object) -> None:
    await _send_raw(send, status, json.dumps(payload).encode())
