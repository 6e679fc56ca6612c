"""Shared REST dependencies: the app state, the caller and its permission, error mapping."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from app.auth.principals import (
    ADMIN,
    OPERATE,
    PLATFORM_OPERATE,
    PLATFORM_READ,
    READ,
    Access,
    Forbidden,
    Principal,
    Unauthenticated,
)
from app.edge.state import AppState

bearer = HTTPBearer(auto_error=False, description="JWT bearer token")
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key")


def get_state(request: Request) -> AppState:
    state = request.scope["state"]["app"]
    assert isinstance(state, AppState)
    return state


State = Annotated[AppState, Depends(get_state)]


ACCESS_ATTRIBUTE = "opsgraph_access"


def require(access: Access) -> Callable[..., Awaitable[Principal]]:
    """The dependency every REST route declares (as `Reader`, `Operator`, `PlatformReader`,
    `PlatformOperator` or `Admin`): it authenticates and applies the access rule in
    `Principal.require`. `app.rest.access.check_declared` refuses to build an app with a route
    that declares none."""

    async def dependency(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
        api_key: Annotated[str | None, Depends(api_key_header)],
    ) -> Principal:
        # `credentials` and `api_key` are declared so the OpenAPI document shows both schemes.
        state = get_state(request)
        try:
            principal = await state.auth.authenticate(
                authorization=request.headers.get("authorization"),
                api_key=api_key,
            )
            principal.require(access)
        except Unauthenticated as exc:
            raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from exc
        except Forbidden as exc:
            raise HTTPException(403, str(exc)) from exc
        return principal

    setattr(dependency, ACCESS_ATTRIBUTE, access)
    return dependency


# tenant scope: a tenant credential acts on its own tenant's objects only
Reader = Annotated[Principal, Depends(require(READ))]
Operator = Annotated[Principal, Depends(require(OPERATE))]
# installation scope: unscoped credentials only
PlatformReader = Annotated[Principal, Depends(require(PLATFORM_READ))]
PlatformOperator = Annotated[Principal, Depends(require(PLATFORM_OPERATE))]
Admin = Annotated[Principal, Depends(require(ADMIN))]
