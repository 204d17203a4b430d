"""Real local servers for messages out: an HTTP receiver that checks webhook signatures, and
an SMTP server (aiosmtpd) that keeps what it receives."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from sqlalchemy import func, select

from restitution.adapters.db import tables as t
from restitution.adapters.db.repository import Repository
from restitution.services.context import App


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def verify_signature(header: str, body: bytes, secret: str) -> bool:
    parts = dict(item.split("=", 1) for item in header.split(","))
    expected = hmac.new(
        secret.encode(), f"{parts['t']}.".encode() + body, hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(expected, parts["v1"])


@dataclass
class Receiver:
    """Collects webhook POSTs; `status_for` decides each answer (default 200)."""

    url: str
    received: list[dict[str, Any]] = field(default_factory=list)
    status_for: Callable[[dict[str, Any]], int] = lambda event: 200
    secrets: dict[str, str] = field(default_factory=dict)  # path → secret
    bad_signatures: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def events(self, path: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [r["event"] for r in self.received if path is None or r["path"] == path]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 30.0) -> None:
        """Bounded polling, for servers fed by real subprocesses."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError("timed out waiting for webhooks")
            time.sleep(0.05)


@contextmanager
def webhook_receiver() -> Iterator[Receiver]:
    port = free_port()
    receiver = Receiver(url=f"http://127.0.0.1:{port}")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            event = json.loads(body)
            secret = receiver.secrets.get(self.path)
            signed = secret is not None and verify_signature(
                self.headers["Restitution-Signature"], body, secret
            )
            with receiver.lock:
                if not signed:
                    receiver.bad_signatures += 1
                receiver.received.append({"path": self.path, "event": event, "signed": signed})
            status = receiver.status_for(event)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 OK"


@contextmanager
def smtp_server() -> Iterator[tuple[str, list[EmailMessage]]]:
    """A real SMTP server on 127.0.0.1; yields its URL and the list of received messages."""
    inbox = _Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield f"smtp://127.0.0.1:{port}", inbox.messages
    finally:
        controller.stop()


# --------------------------------------------------------------------------- the outbox


def pending_outbox_rows(app: App, count: int) -> None:
    """`count` outbox rows still to dispatch, events evt_000, evt_001... in that order."""
    now = app.clock.now()
    with app.db.transaction() as conn:
        Repository(conn).add_outbox_rows(
            [(f"evt_{n:03}", "case.opened", {"case_id": f"case_{n}"}, now) for n in range(count)]
        )


def undispatched(app: App) -> int:
    """How many outbox rows are still to dispatch."""
    with app.db.transaction(write=False) as conn:
        query = select(func.count()).select_from(t.outbox).where(t.outbox.c.delivered_at.is_(None))
        return int(conn.execute(query).scalar_one())


def skipped_for_no_address(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The info lines that count a batch's recipients without an address (each of those
    recipients has a debug line of its own only)."""
    assert {e["log_level"] for e in logs if e["event"] == "email_skipped_no_address"} <= {"debug"}
    return [
        {key: value for key, value in entry.items() if key != "event"}
        for entry in logs
        if entry["event"] == "emails_skipped_no_address" and entry["log_level"] == "info"
    ]
