"""What the benchmarks share: fresh test stores and one API process on them, with a signing
secret for tokens; the median of repeated runs."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from app.auth.tokens import issue_token
from app.config import Settings
from tests.processes import Proc, start_server
from tests.stores import Stores, open_stores

SECRET = "bench-secret-bench-secret-bench-secret-0"

R = TypeVar("R")


def median(results: Sequence[R], key: Callable[[R], float]) -> R:
    """The run whose `key` is the median (the upper one of an even number)."""
    return sorted(results, key=key)[len(results) // 2]


@dataclass
class Stack:
    stores: Stores
    proc: Proc
    base: str

    @property
    def settings(self) -> Settings:
        return Settings(
            database_url=self.stores.database_url,
            redis_url=self.stores.redis_url,
            jwt_secret=SECRET,
        )

    @property
    def dsn(self) -> str:
        return self.stores.database_url.replace("postgresql+asyncpg://", "postgresql://")

    def token(self, role: str) -> str:
        return issue_token(self.settings, role=role, ttl=3600)


@contextmanager
def fresh_stores() -> Iterator[tuple[Stores, Path]]:
    with tempfile.TemporaryDirectory() as tmp:
        stores = open_stores(Path(tmp))
        try:
            yield stores, Path(tmp)
        finally:
            stores.close()


def serve(stores: Stores, folder: Path) -> Stack:
    env = {
        "OPSGRAPH_DATABASE_URL": stores.database_url,
        "OPSGRAPH_REDIS_URL": stores.redis_url,
        "OPSGRAPH_JWT_SECRET": SECRET,
        "OPSGRAPH_WEBHOOK_SECRET": SECRET,
    }
    proc, base = start_server(env, folder)
    return Stack(stores=stores, proc=proc, base=base)
