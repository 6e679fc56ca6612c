"""Resolving a request's credentials (bearer token or X-API-Key) into its Principal."""

from __future__ import annotations

import time
from collections import OrderedDict

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth.api_keys import find_api_key
from app.auth.principals import Principal, Unauthenticated, principal_of
from app.auth.tokens import decode_token
from app.config import Settings


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
        """`fresh` skips the API key cache (a long-lived connection re-checking its key).

        A request carrying both is judged by its bearer token alone (the API key is not
        read): which credential counts never depends on whether the other one verifies."""
        if authorization:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthenticated("use 'Authorization: Bearer <token>'")
            return decode_token(self.settings, token.strip())
        if api_key:
            return await self._api_key(api_key, fresh=fresh)
        raise Unauthenticated("credentials required")

    async def _api_key(self, plaintext: str, *, fresh: bool = False) -> Principal:
        now = time.monotonic()
        hit = self._keys.get(plaintext)
        if hit is not None and not fresh and now - hit[0] < self.CACHE_SECONDS:
            principal = hit[1]
        else:
            async with self.sessionmaker() as session:
                row = await find_api_key(session=session, plaintext=plaintext)
            principal = principal_of(f"apikey:{row.name}", row.role, row.tenant_id) if row else None
            self._keys[plaintext] = (now, principal)
            self._keys.move_to_end(plaintext)
            while len(self._keys) > self.CACHE_SIZE:
                self._keys.popitem(last=False)
        if principal is None:
            raise Unauthenticated("unknown API key")
        return principal
