"""Staff members, built-in roles and permission checks, with every grant audited.

Roles are layered: a member may grant only a role ranked below their own whose permissions
they all hold, and can never raise themselves. A member scoped to channels acts on those
channels only.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from koudai_flask.errors import NotFound, PermissionDenied, ValidationError
from koudai_flask.models import AuditEntry, Channel, StaffMember
from koudai_flask.services.transaction import current_session, unit_of_work

PERMISSIONS = (
    "orders.view",
    "orders.ship",
    "orders.cancel",
    "orders.refund",
    "orders.export",
    "catalog.edit",
    "stock.adjust",
    "customers.view",
    "customers.edit",
    "customers.export",
    "marketing.manage",
    "channels.manage",
    "staff.manage",
    "audit.view",
)

# role -> (rank, permissions). A higher rank may manage lower ranks.
ROLES: dict[str, tuple[int, frozenset[str]]] = {
    "owner": (100, frozenset(PERMISSIONS)),
    "admin": (80, frozenset(PERMISSIONS)),
    "customer_service": (
        40,
        frozenset(
            {"orders.view", "orders.cancel", "orders.refund", "customers.view", "customers.edit"}
        ),
    ),
    "warehouse": (40, frozenset({"orders.view", "orders.ship", "stock.adjust"})),
    "marketing": (40, frozenset({"marketing.manage", "customers.view", "orders.view"})),
    "viewer": (10, frozenset({"orders.view", "customers.view"})),
}


def _member(user_id: str) -> StaffMember | None:
    return current_session().scalar(select(StaffMember).where(StaffMember.user_id == str(user_id)))


def get_member(user_id: str) -> StaffMember:
    member = _member(user_id)
    if member is None or not member.active:
        raise NotFound(f"{user_id!r} is not an active staff member")
    return member


def permissions_of(member: StaffMember) -> frozenset[str]:
    return ROLES.get(member.role, (0, frozenset()))[1] if member.active else frozenset()


def can(user_id: str | int, codename: str, *, channel: str | None = None) -> bool:
    """Whether the staff member may do ``codename`` (on ``channel``, when given)."""
    if codename not in PERMISSIONS:
        raise ValueError(f"unknown permission {codename!r}")
    member = _member(str(user_id))
    if member is None or codename not in permissions_of(member):
        return False
    return channel is None or member.channels is None or channel in member.channels


def require(user_id: str | int, codename: str, *, channel: str | None = None) -> None:
    if not can(user_id, codename, channel=channel):
        raise PermissionDenied(f"staff {user_id} may not {codename}")


def _check_grant(granter: StaffMember, role: str, target: StaffMember | None) -> None:
    rank, permissions = ROLES[role]
    granter_rank, granter_permissions = ROLES.get(granter.role, (0, frozenset()))
    if target is not None and target.id == granter.id:
        raise PermissionDenied("staff cannot change their own role")
    if "staff.manage" not in granter_permissions:
        raise PermissionDenied(f"{granter.user_id} may not manage staff")
    if granter.role != "owner" and (rank >= granter_rank or not permissions <= granter_permissions):
        raise PermissionDenied(f"{granter.user_id} ({granter.role}) may not grant {role}")
    if (
        target is not None
        and granter.role != "owner"
        and ROLES.get(target.role, (0, frozenset()))[0] >= granter_rank
    ):
        raise PermissionDenied(f"{granter.user_id} may not change {target.user_id}")


def grant(
    user_id: str | int,
    role: str,
    *,
    channels: list[str] | None = None,
    granted_by: str | int | None = None,
    display_name: str = "",
    email: str | None = None,
    password: str | None = None,
) -> StaffMember:
    """Make ``user_id`` a staff member with ``role`` (optionally scoped to ``channels``).

    ``granted_by=None`` is the system (CLI, set-up); otherwise the granter must outrank the
    role and hold all its permissions. The change is audited.
    """
    if role not in ROLES:
        raise ValidationError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    user_id = str(user_id)
    with unit_of_work() as session:
        if channels is not None:
            known = set(session.scalars(select(Channel.name).where(Channel.name.in_(channels))))
            unknown = sorted(set(channels) - known)
            if unknown:
                raise NotFound(f"unknown channel {unknown[0]!r}")
        target = _member(user_id)
        actor = "system"
        granter = None
        if granted_by is not None:
            granter = get_member(str(granted_by))
            _check_grant(granter, role, target)
            actor = f"staff:{granter.user_id}"
        before = _describe(target)
        if target is None:
            target = StaffMember(user_id=user_id, role=role)
            session.add(target)
        target.role = role
        target.channels = list(channels) if channels is not None else None
        target.granted_by_id = granter.id if granter else None
        target.active = True
        if display_name:
            target.display_name = display_name
        if email is not None:
            email = email.strip().lower()
            other = session.scalar(
                select(StaffMember).where(StaffMember.email == email, StaffMember.id != target.id)
            )
            if other is not None:
                raise ValidationError(f"email {email!r} belongs to staff {other.user_id}")
            target.email = email
        if password is not None:
            if len(password) < 8:
                raise ValidationError("a staff password needs at least 8 characters")
            target.password_hash = generate_password_hash(password)
        session.flush()
        audit(actor, "staff.grant", "staff", user_id, before, _describe(target))
        return target


def revoke(user_id: str | int, *, revoked_by: str | int | None = None) -> StaffMember:
    with unit_of_work() as session:
        target = get_member(str(user_id))
        actor = "system"
        if revoked_by is not None:
            granter = get_member(str(revoked_by))
            _check_grant(granter, "viewer", target)
            actor = f"staff:{granter.user_id}"
        before = _describe(target)
        target.active = False
        session.flush()
        audit(actor, "staff.revoke", "staff", target.user_id, before, _describe(target))
        return target


def authenticate(email: str, password: str) -> StaffMember | None:
    """Our own staff login (used when the host has no Flask-Login)."""
    member = current_session().scalar(
        select(StaffMember).where(StaffMember.email == email.strip().lower())
    )
    if member is None or not member.active or not member.password_hash:
        return None
    return member if check_password_hash(member.password_hash, password) else None


def _describe(member: StaffMember | None) -> dict[str, Any] | None:
    if member is None:
        return None
    return {"role": member.role, "channels": member.channels, "active": member.active}


def audit(
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    """Append an audit entry to the current transaction."""
    current_session().add(
        AuditEntry(
            actor=actor,
            action=action,
            object_type=object_type,
            object_id=str(object_id),
            before=before,
            after=after,
        )
    )
