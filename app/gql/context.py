"""Per-request GraphQL context: the app state, the caller, and request-scoped DataLoaders."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.types import Info as StrawberryInfo

from app.auth.principals import Permission, Principal
from app.edge.state import AppState
from app.edge.uow import read_only, unit_of_work
from app.gql.loaders import Loaders

T = TypeVar("T")


@dataclass
class Context:
    state: AppState
    principal: Principal | None
    request: Any = None
    response: Any = None
    connection_params: dict[str, Any] | None = None
    loaders: Loaders = field(init=False)

    def __post_init__(self) -> None:
        self.loaders = Loaders(self.state.sessionmaker)

    @property
    def tenant_id(self) -> str | None:
        return self.principal.tenant_id if self.principal else None

    def tenant_for(self, requested: str | None) -> str | None:
        """The tenant a filter or a new row's origin is for: Principal.tenant_for."""
        return self.principal.tenant_for(requested) if self.principal else requested

    @property
    def actor(self) -> str:
        """Who acts, as audit records and authored rows name them."""
        return self.principal.subject if self.principal else "?"

    @property
    def is_admin(self) -> bool:
        return bool(self.principal and self.principal.can(Permission.ADMIN))

    def reading(self) -> AbstractAsyncContextManager[AsyncSession]:
        """A read-only session."""
        return read_only(self.state.sessionmaker)

    def writing(self) -> AbstractAsyncContextManager[AsyncSession]:
        """A unit of work: one transaction, its effects carried out after it commits."""
        return unit_of_work(self.state.sessionmaker, self.state.redis)

    async def act(self, action: Callable[..., Awaitable[T]], /, **arguments: Any) -> T:
        """A service's action in a unit of work, within the caller's tenant:
        `action(session=, tenant_id=, **arguments)`."""
        async with self.writing() as session:
            return await action(session=session, tenant_id=self.tenant_id, **arguments)

    async def act_as_caller(self, action: Callable[..., Awaitable[T]], /, **arguments: Any) -> T:
        """`act`, naming who acts too: `action(session=, tenant_id=, actor=, **arguments)`."""
        return await self.act(action, actor=self.actor, **arguments)


Info = StrawberryInfo[Context, None]
