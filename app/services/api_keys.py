"""API keys: created once (plaintext shown once), stored as SHA-256 hashes, looked up by hash."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

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
