"""What a store outage looks like from the API: the exceptions that mean PostgreSQL or Redis is
unreachable. REST answers them with 503 and GraphQL with code UNAVAILABLE, never a 500."""

from __future__ import annotations

from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

STORE_ERRORS: tuple[type[Exception], ...] = (
    RedisError,
    OperationalError,
    InterfaceError,
    DBAPIError,
    ConnectionError,
    TimeoutError,
)
