"""Bearer tokens: signed JWTs issued by `opsgraph token` and verified on every request."""

from __future__ import annotations

import time
from dataclasses import replace

import jwt

from app.auth.principals import Principal, Unauthenticated, check_credential, principal_of
from app.config import Settings


def issue_token(
    settings: Settings,
    *,
    role: str,
    tenant_id: str | None = None,
    ttl: int | None = None,
    subject: str = "cli",
) -> str:
    check_credential(role, tenant_id)
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
    principal = principal_of(str(claims["sub"]), claims.get("role"), claims.get("tenant_id"))
    return replace(principal, expires_at=float(claims["exp"]))
