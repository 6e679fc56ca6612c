"""Authentication (bearer JWT, X-API-Key) and authorization (roles, tenant scoping)."""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from enum import StrEnum

import jwt
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.services.api_keys import find_api_key


class Permission(StrEnum):
    READ = "read"
    OPERATE = "operate"
    ADMIN = "admin"


ADMIN_ROLES = frozenset({"platform_admin", "super_admin", "system_admin"})
ROLE_PERMISSIONS: dict[str, frozenset[Permission]] = {
    **{r: frozenset(Permission) for r in ADMIN_ROLES},
    "ai_admin": frozenset({Permission.READ, Permission.OPERATE}),
    "tenant_admin": frozenset({Permission.READ, Permission.OPERATE}),
    "viewer": frozenset({Permission.READ}),
}
ROLES = tuple(ROLE_PERMISSIONS)


class Unauthenticated(Exception):
    """No credentials, or credentials that do not verify: HTTP 401."""


class Forbidden(Exception):
    """Valid credentials without the needed role: HTTP 403."""


@dataclass(frozen=True)
class Principal:
    subject: str
    role: str
    tenant_id: str | None = None
    expires_at: float | None = None  # a token's `exp` (Unix time); None for API keys

    def can(self, permission: Permission) -> bool:
        return permission in ROLE_PERMISSIONS.get(self.role, frozenset())

    def require(self, permission: Permission) -> None:
        if not self.can(permission):
            raise Forbidden(f"role {self.role!r} may not {permission.value}")


def issue_token(
    settings: Settings,
    *,
    role: str,
    tenant_id: str | None = None,
    ttl: int | None = None,
    subject: str = "cli",
) -> str:
    if role not in ROLE_PERMISSIONS:
        raise ValueError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    if not settings.jwt_secret:
        raise ValueError("OPSGRAPH_JWT_SECRET is not set")
    now = int(time.time())
    claims: dict[str, object] = {
        "sub": subject,
        "role": role,
        "iat": now,
        "exp": now + (ttl or settings.token_ttl_seconds),
        "iss": settings.jwt_issuer,
    }
    if tenant_id:
        claims["tenant_id"] = tenant_id
    return jwt.encode(claims, settings.jwt_secret, algorithm="HS256")


def decode_token(settings: Settings, token: str) -> Principal:
    key = settings.jwt_public_key or settings.jwt_secret
    if not key:
        raise Unauthenticated("bearer tokens are not configured")
    algorithms = [settings.jwt_algorithm] if settings.jwt_public_key else ["HS256"]
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=algorithms,
            issuer=settings.jwt_issuer,
            options={"require": ["exp", "sub"]},
        )
    except jwt.PyJWTError as exc:
        raise Unauthenticated(f"invalid token: {exc}") from exc
    principal = _principal(str(claims["sub"]), claims.get("role"), claims.get("tenant_id"))
    return replace(principal, expires_at=float(claims["exp"]))


def _principal(subject: str, role: object, tenant: object) -> Principal:
    if not isinstance(role, str) or role not in ROLE_PERMISSIONS:
        raise Unauthenticated("credentials carry no known role")
    if tenant is not None and not isinstance(tenant, str):
        raise Unauthenticated("tenant_id must be a string")
    if role == "tenant_admin" and not tenant:
        raise Unauthenticated("a tenant_admin credential must name its tenant")
    return Principal(subject=subject, role=role, tenant_id=tenant or None)


class Authenticator:
    """Resolves request credentials; API key lookups are cached briefly (bounded)."""

    CACHE_SECONDS = 30.0
    CACHE_SIZE = 1024

    def __init__(self, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        self._keys: OrderedDict[str, tuple[float, Principal | None]] = OrderedDict()

    async def authenticate(
        self, *, authorization: str | None, api_key: str | None, fresh: bool = False
    ) -> Principal:
        """`fresh` skips the API key cache (a long-lived connection re-checking its key)."""
        if api_key:
            return await self._api_key(api_key, fresh=fresh)
        if authorization:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthenticated("use 'Authorization: Bearer <token>'")
            return decode_token(self.settings, token.strip())
        raise Unauthenticated("credentials required")

    async def _api_key(self, plaintext: str, *, fresh: bool = False) -> Principal:
        now = time.monotonic()
        hit = self._keys.get(plaintext)
        if hit is not None and not fresh and now - hit[0] < self.CACHE_SECONDS:
            principal = hit[1]
        else:
            async with self.sessionmaker() as session:
                row = await find_api_key(session=session, plaintext=plaintext)
            principal = _principal(f"apikey:{row.name}", row.role, row.tenant_id) if row else None
            self._keys[plaintext] = (now, principal)
            self._keys.move_to_end(plaintext)
            while len(self._keys) > self.CACHE_SIZE:
                self._keys.popitem(last=False)
        if principal is None:
            raise Unauthenticated("unknown API key")
        return principal
