"""Idempotent submission: a client's key, scoped to its tenant, claimed in the transaction
that makes the task or workflow. The same key with the same request answers what it made
(a replay); with another request, a conflict naming the key. Kept `OPSGRAPH_IDEMPOTENCY_TTL`.

The claim is one `INSERT ... ON CONFLICT` on the key's primary key: concurrent submits of one
key wait on the first one's row and, once it commits, read it, so 50 of them leave one row.
A claim that expired is taken over by the next one; a rolled back transaction takes its
claim with it."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import IdempotencyKey
from app.kernel.errors import DomainError

FIELD = "idempotencyKey"


class KeyConflict(DomainError):
    """The key was used for a different request (REST 409, GraphQL CONFLICT)."""

    code = "CONFLICT"


@dataclass(frozen=True)
class Claim:
    """Who asks for a key: the tenant's (None: an unscoped credential's), what it makes."""

    tenant_id: str | None
    key: str
    kind: str  # task | workflow
    fingerprint: str


def fingerprint(request: Any, *, leave_out: tuple[str, ...] = ("idempotency_key",)) -> str:
    """A request's fingerprint: the SHA-256 of its fields as canonical JSON (a dataclass's
    fields but `leave_out`)."""
    data = asdict(request) if hasattr(request, "__dataclass_fields__") else request
    if isinstance(data, dict):
        data = {k: v for k, v in data.items() if k not in leave_out}
    text = json.dumps(data, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


async def claim(
    session: AsyncSession, claim: Claim, object_id: uuid.UUID, *, now: datetime, ttl: float
) -> uuid.UUID | None:
    """Claim the key for `object_id` (None: it is ours; make the object), or the id of what the
    same request made before (a replay). KeyConflict when it was used for another request."""
    scope = claim.tenant_id or ""
    values = {
        "scope": scope,
        "key": claim.key,
        "kind": claim.kind,
        "fingerprint": claim.fingerprint,
        "object_id": object_id,
        "created_at": now,
        "expires_at": now + timedelta(seconds=ttl),
    }
    new = insert(IdempotencyKey).values(values)
    stmt = new.on_conflict_do_update(
        constraint="pk_idempotency_keys",
        set_={k: new.excluded[k] for k in values if k not in ("scope", "key")},
        # an expired claim is taken over; a live one is left as it is
        where=IdempotencyKey.expires_at <= new.excluded.created_at,
    ).returning(IdempotencyKey.object_id)
    if (await session.execute(stmt)).scalar_one_or_none() is not None:
        return None
    held = (
        await session.execute(
            select(IdempotencyKey).where(
                IdempotencyKey.scope == scope, IdempotencyKey.key == claim.key
            )
        )
    ).scalar_one()
    if held.kind != claim.kind or held.fingerprint != claim.fingerprint:
        raise KeyConflict(
            f"idempotency key {claim.key!r} was used for a different request "
            f"(a {held.kind}, {held.object_id}) in the last TTL",
            field=FIELD,
        )
    return held.object_id


async def purge_expired(session: AsyncSession, *, now: datetime, limit: int = 10_000) -> int:
    """Delete up to `limit` expired keys; how many went."""
    expired = (
        select(IdempotencyKey.scope, IdempotencyKey.key)
        .where(IdempotencyKey.expires_at <= now)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    stmt = delete(IdempotencyKey).where(
        tuple_(IdempotencyKey.scope, IdempotencyKey.key).in_(expired)
    )
    result = await session.execute(stmt)
    return int(getattr(result, "rowcount", 0) or 0)
