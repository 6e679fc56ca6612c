"""Permission classes: every root field declares exactly one (its `Access`), and
`check_declared` refuses to build a schema with a root field that declares none."""

from __future__ import annotations

from typing import Any, ClassVar

import strawberry
from graphql import GraphQLError
from strawberry.permission import BasePermission, PermissionExtension

from app.auth.principals import (
    ADMIN,
    OPERATE,
    PLATFORM_OPERATE,
    PLATFORM_READ,
    READ,
    Access,
    Forbidden,
)


class Needs(BasePermission):
    access: ClassVar[Access]

    def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:
        # Raise instead of returning False: the instance is shared by concurrent requests,
        # so the message cannot live on it.
        principal = info.context.principal
        if principal is None:
            raise GraphQLError("authentication required", extensions={"code": "UNAUTHENTICATED"})
        try:
            principal.require(self.access)
        except Forbidden as exc:
            raise GraphQLError(str(exc), extensions={"code": "FORBIDDEN"}) from None
        return True


# tenant scope: a tenant credential acts on its own tenant's objects only
class CanRead(Needs):
    access = READ


class CanOperate(Needs):
    access = OPERATE


# installation scope: unscoped credentials only
class CanReadPlatform(Needs):
    access = PLATFORM_READ


class CanOperatePlatform(Needs):
    access = PLATFORM_OPERATE


class CanAdmin(Needs):
    access = ADMIN


class UndeclaredAccess(RuntimeError):
    """A root field without exactly one access declaration: caught when the schema is built."""


def field_access(field: Any) -> Access:
    declared = [
        p.access
        for ext in field.extensions
        if isinstance(ext, PermissionExtension)
        for p in ext.permissions
        if isinstance(p, Needs)
    ]
    if len(declared) != 1:
        raise UndeclaredAccess(
            f"root field {field.python_name!r} declares {len(declared)} accesses; every root"
            " field declares exactly one (CanRead, CanOperate, CanReadPlatform,"
            " CanOperatePlatform or CanAdmin)"
        )
    return declared[0]


def check_declared(schema: strawberry.Schema) -> None:
    for root in ("Query", "Mutation", "Subscription"):
        definition = schema.get_type_by_name(root)
        for field in getattr(definition, "fields", ()):
            field_access(field)
