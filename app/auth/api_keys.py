"""API keys: created once (plaintext shown once), stored as SHA-256 hashes, looked up by hash."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import utcnow
from app.db.models import ApiKey


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


async def create_api_key(
    *, session: AsyncSession, name: str, role: str, tenant_id: str | None
) -> tuple[ApiKey, str]:
    plaintext = "og_" + secrets.token_urlsafe(32)
    row = ApiKey(
        name=name,
        prefix=plaintext[:10],
        key_hash=hash_key(plaintext),
        role=role,
        tenant_id=tenant_id,
    )
    session.add(row)
    await session.flush()
    return row, plaintext


async def find_api_key(*, session: AsyncSession, plaintext: str) -> ApiKey | None:
    stmt = select(ApiKey).where(ApiKey.key_hash == hash_key(plaintext), ApiKey.revoked_at.is_(None))
    return (await session.execute(stmt)).scalar_one_or_none()


async def revoke_api_keys(*, session: AsyncSession, name: str) -> int:
    """Revoke every live key with this name; open websockets using one are closed at their
    next credential check."""
    stmt = (
        update(ApiKey)
        .where(ApiKey.name == name, ApiKey.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    return int((await session.execute(stmt)).rowcount or 0)  # type: ignore[attr-defined]
