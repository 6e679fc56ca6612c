"""Shared REST dependencies: the app state, the caller and its permission, error mapping."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from app.auth import Forbidden, Permission, Principal, Unauthenticated
from app.state import AppState

bearer = HTTPBearer(auto_error=False, description="JWT bearer token")
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key")


def get_state(request: Request) -> AppState:
    state = request.scope["state"]["app"]
    assert isinstance(state, AppState)
    return state


State = Annotated[AppState, Depends(get_state)]


def require(
    permission: Permission, *, platform: bool = False
) -> Callable[..., Awaitable[Principal]]:
    """`platform`: an installation-wide resource (the camera pipeline, the DLQ of every
    queue, system health), refused to tenant-scoped credentials."""

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
            principal.require(permission)
            if platform and principal.tenant_id is not None:
                raise Forbidden("installation-wide resource: not for tenant-scoped credentials")
        except Unauthenticated as exc:
            raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from exc
        except Forbidden as exc:
            raise HTTPException(403, str(exc)) from exc
        return principal

    return dependency


Reader = Annotated[Principal, Depends(require(Permission.READ))]
Operator = Annotated[Principal, Depends(require(Permission.OPERATE))]
Admin = Annotated[Principal, Depends(require(Permission.ADMIN))]
PlatformReader = Annotated[Principal, Depends(require(Permission.READ, platform=True))]
PlatformOperator = Annotated[Principal, Depends(require(Permission.OPERATE, platform=True))]
