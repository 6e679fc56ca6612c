"""Who a caller is and what it may do: permissions, roles, scopes, the Access a route or root
field declares, and the Principal every credential becomes."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Permission(StrEnum):
    READ = "read"
    OPERATE = "operate"
    ADMIN = "admin"


class Scope(StrEnum):
    """Where an action reaches. Every REST route and GraphQL root field declares one."""

    # the caller's own tenant: a tenant credential sees and changes only its tenant's rows,
    # an unscoped credential every tenant's
    TENANT = "tenant"
    # the whole installation (the camera pipeline, the DLQ, breakers, the LLM semaphore and
    # stats, system health, opsgraph's own workers): unscoped credentials only
    INSTALLATION = "installation"


ADMIN_ROLES = frozenset({"platform_admin", "super_admin", "system_admin"})
ROLE_PERMISSIONS: dict[str, frozenset[Permission]] = {
    **{r: frozenset(Permission) for r in ADMIN_ROLES},
    "ai_admin": frozenset({Permission.READ, Permission.OPERATE}),
    "tenant_admin": frozenset({Permission.READ, Permission.OPERATE}),
    "viewer": frozenset({Permission.READ}),
}
ROLES = tuple(ROLE_PERMISSIONS)
# What any credential naming a tenant may hold, whatever its role: the destructive, admin-only
# actions (clear, purge, overwrite, semaphore clear) are all installation-wide, so a tenant
# `platform_admin` is a tenant operator. The one place that caps a tenant's rights.
TENANT_PERMISSIONS = frozenset({Permission.READ, Permission.OPERATE})
INSTALLATION_WIDE = "installation-wide: not for tenant-scoped credentials"


class Unauthenticated(Exception):
    """No credentials, or credentials that do not verify: HTTP 401."""


class Forbidden(Exception):
    """Valid credentials without the needed role or scope: HTTP 403."""


class OtherTenant(Forbidden):
    """A tenant credential named another tenant (see Principal.tenant_for)."""


@dataclass(frozen=True)
class Access:
    """What a route or root field needs: a permission, and the scope it reaches."""

    permission: Permission
    scope: Scope

    def __post_init__(self) -> None:
        if self.permission is Permission.ADMIN and self.scope is not Scope.INSTALLATION:
            raise ValueError("admin actions are installation-wide (Scope.INSTALLATION)")


READ = Access(Permission.READ, Scope.TENANT)
OPERATE = Access(Permission.OPERATE, Scope.TENANT)
PLATFORM_READ = Access(Permission.READ, Scope.INSTALLATION)
PLATFORM_OPERATE = Access(Permission.OPERATE, Scope.INSTALLATION)
ADMIN = Access(Permission.ADMIN, Scope.INSTALLATION)


@dataclass(frozen=True)
class Principal:
    subject: str
    role: str
    tenant_id: str | None = None
    expires_at: float | None = None  # a token's `exp` (Unix time); None for API keys

    @property
    def permissions(self) -> frozenset[Permission]:
        held = ROLE_PERMISSIONS.get(self.role, frozenset())
        return held if self.tenant_id is None else held & TENANT_PERMISSIONS

    def can(self, permission: Permission) -> bool:
        return permission in self.permissions

    def allows(self, access: Access) -> bool:
        return self.can(access.permission) and (
            access.scope is Scope.TENANT or self.tenant_id is None
        )

    def require(self, access: Access) -> None:
        if access.scope is Scope.INSTALLATION and self.tenant_id is not None:
            raise Forbidden(INSTALLATION_WIDE)
        if not self.can(access.permission):
            raise Forbidden(f"role {self.role!r} may not {access.permission.value}")

    def tenant_for(self, requested: str | None, *, strict: bool = False) -> str | None:
        """The tenant a request is for where it may name one (a filter's `tenant_id`, a new
        row's origin): an unscoped credential's choice (None: every tenant), a tenant
        credential's own tenant whatever it names, or OtherTenant when `strict` and it names
        another."""
        if self.tenant_id is None:
            return requested
        if strict and requested not in (None, self.tenant_id):
            raise OtherTenant(f"tenant {requested!r} is not this credential's tenant")
        return self.tenant_id


def check_credential(role: str, tenant_id: str | None) -> str | None:
    """The rules a credential is held to when it is used, applied when it is made too: an error
    for one that would never be accepted, else a note when the role's installation-wide rights
    do not apply because it names a tenant (None: nothing to say)."""
    if role not in ROLE_PERMISSIONS:
        raise ValueError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    if role == "tenant_admin" and not tenant_id:
        raise ValueError("a tenant_admin credential must name its tenant (--tenant)")
    lost = ROLE_PERMISSIONS[role] - TENANT_PERMISSIONS
    if tenant_id and lost:
        return (
            f"note: this {role} credential names tenant {tenant_id!r}, so it acts within that"
            f" tenant only; {', '.join(sorted(p.value for p in lost))} and installation-wide"
            " views are for credentials without a tenant"
        )
    return None


def principal_of(subject: str, role: object, tenant: object) -> Principal:
    """The Principal a verified credential names (a token's claims, an API key's row), or
    Unauthenticated when they name no known role or a malformed tenant."""
    if not isinstance(role, str) or role not in ROLE_PERMISSIONS:
        raise Unauthenticated("credentials carry no known role")
    if tenant is not None and not isinstance(tenant, str):
        raise Unauthenticated("tenant_id must be a string")
    if role == "tenant_admin" and not tenant:
        raise Unauthenticated("a tenant_admin credential must name its tenant")
    return Principal(subject=subject, role=role, tenant_id=tenant or None)
