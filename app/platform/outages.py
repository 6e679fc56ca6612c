"""What a store outage looks like from the API: the exceptions that mean PostgreSQL or Redis is
unreachable. REST answers them with 503 and GraphQL with code UNAVAILABLE, never a 500. A
database error caused by the data of a request (an invalid value, a constraint) is not an
outage: `is_outage` tells them apart, so a client is never told to retry a request that can
only fail again."""

from __future__ import annotations

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

STORE_ERRORS: tuple[type[Exception], ...] = (
    RedisError,
    OperationalError,
    InterfaceError,
    DBAPIError,
    ConnectionError,
    TimeoutError,
)

# SQLSTATE classes of a store that is down, restarting or out of resources
_OUTAGE_SQLSTATE_CLASSES = ("08", "53", "57", "58")


def is_outage(exc: BaseException) -> bool:
    if isinstance(exc, RedisConnectionError | RedisTimeoutError | ConnectionError | TimeoutError):
        return True
    if isinstance(exc, RedisError):
        return "LOADING" in str(exc) or "MASTERDOWN" in str(exc)
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated or isinstance(exc, InterfaceError):
            return True
        orig = exc.orig
        code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
        if code:
            return str(code)[:2] in _OUTAGE_SQLSTATE_CLASSES
        return isinstance(exc, OperationalError) or isinstance(
            getattr(orig, "__cause__", None), OSError
        )
    return isinstance(exc, OSError)


def is_data_error(exc: BaseException) -> bool:
    """PostgreSQL refused a value (SQLSTATE class 22, data exception; 23, constraint)."""
    if not isinstance(exc, DBAPIError):
        return False
    code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return bool(code) and str(code)[:2] in ("22", "23")
