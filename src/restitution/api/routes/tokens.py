"""Party tokens: the operator mints them for its buyers, sellers and mediators."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from restitution.api.deps import AppDep, OperatorDep
from restitution.api.routing import api_router
from restitution.api.schemas import PartyTokenIn
from restitution.domain.history import format_time
from restitution.services.auth import mint_party_token

router = api_router(prefix="/v1/party_tokens", tags=["parties"])


@router.post("", status_code=201, summary="Mint a token (and portal link) for one party")
def mint(body: PartyTokenIn, app: AppDep, principal: OperatorDep) -> dict[str, Any]:
    minted = mint_party_token(app, body.role, body.party_id, body.ttl_seconds)
    area = "console" if minted.role == "mediator" else "portal"
    base = app.settings.public_url.rstrip("/")
    return {
        "object": "party_token",
        "token": minted.token,
        "role": minted.role,
        "party_id": minted.party_id,
        "expires_at": format_time(minted.expires_at),
        "portal_url": f"{base}/{area}/login?token={quote(minted.token)}",
    }
