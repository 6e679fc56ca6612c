"""Per-request GraphQL context: the app state, the caller, and request-scoped DataLoaders."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from strawberry.types import Info as StrawberryInfo

from app.auth import Principal
from app.gql.loaders import Loaders
from app.state import AppState


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


Info = StrawberryInfo[Context, None]
