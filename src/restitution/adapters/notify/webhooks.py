"""Signed webhook POSTs (API.md: `Restitution-Signature: t=<unix>,v1=<hex HMAC-SHA256>`)."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

import httpx


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """`t=<unix>,v1=<hex HMAC-SHA256 of "t.body">`, keyed with the secret string as UTF-8."""
    signed = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


@dataclass(frozen=True)
class PostResult:
    status_code: int | None
    error: str | None

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class WebhookPoster:
    """One HTTP client (keep-alive) for a batch of deliveries; redirects are not followed."""

    def __init__(self, timeout: float) -> None:
        self.client = httpx.Client(timeout=timeout, follow_redirects=False)

    def post(self, url: str, secret: str, timestamp: int, body: bytes) -> PostResult:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Restitution-Webhooks/1",
            "Restitution-Signature": signature(secret, timestamp, body),
        }
        try:
            response = self.client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return PostResult(None, f"{type(exc).__name__}: {exc}"[:500])
        return PostResult(response.status_code, None)

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> WebhookPoster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
