"""What routes get injected: the application and the authenticated principal."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from restitution.domain.errors import Forbidden
from restitution.services.auth import Principal, authenticate
from restitution.services.context import App

bearer = HTTPBearer(auto_error=False, description="The operator key or a party token")


def get_app(request: Request) -> App:
    app: App = request.app.state.restitution
    return app


def get_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    app = get_app(request)
    token = credentials.credentials if credentials else None
    return authenticate(app, request.app.state.operator_key, token)


def require_operator(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    if not principal.is_operator:
        raise Forbidden("operator_only", "this needs the operator key")
    return principal


AppDep = Annotated[App, Depends(get_app)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
OperatorDep = Annotated[Principal, Depends(require_operator)]
