"""Every REST route declares who may call it, once: the check that refuses to include a router
with a route that declares nothing (or two things), and the OpenAPI words for what it declares."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from app.auth.principals import Access, Scope
from app.rest.deps import ACCESS_ATTRIBUTE


class UndeclaredAccess(RuntimeError):
    """A route without exactly one access declaration: a bug caught when the app is built."""


def _declared(dependant: Dependant) -> list[Access]:
    found: list[Access] = []
    for dep in dependant.dependencies:
        access = getattr(dep.call, ACCESS_ATTRIBUTE, None)
        if isinstance(access, Access):
            found.append(access)
        found.extend(_declared(dep))
    return found


def route_access(route: APIRoute) -> Access:
    declared = _declared(route.dependant)
    if len(declared) != 1:
        methods = ",".join(sorted(route.methods or ()))
        raise UndeclaredAccess(
            f"{methods} {route.path} declares {len(declared)} accesses; every route declares"
            " exactly one (Reader, Operator, PlatformReader, PlatformOperator or Admin)"
        )
    return declared[0]


def declared(router: APIRouter) -> APIRouter:
    """Every router goes through this before it is included (app/main.py): each route's
    declaration also goes into its OpenAPI operation (`x-opsgraph-access`), so a client reads
    who may call it, and tests/test_scope.py fails on an operation served without one."""
    for route in router.routes:
        if not isinstance(route, APIRoute):
            continue
        access = route_access(route)
        extra: dict[str, Any] = dict(route.openapi_extra or {})
        extra["x-opsgraph-access"] = {
            "permission": access.permission.value,
            "scope": access.scope.value,
        }
        route.openapi_extra = extra
        if access.scope is Scope.INSTALLATION:
            note = (
                "Installation-wide: unscoped credentials only (a tenant-scoped credential"
                " gets 403 whatever its role)."
            )
            route.description = f"{route.description}\n\n{note}".strip()
    return router
