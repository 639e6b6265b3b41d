"""Staff members, built-in roles and permission checks, with every grant audited.

Roles are layered: a member may grant only a role ranked below their own whose permissions
they all hold, and can never raise themselves. A member scoped to channels acts on those
channels only.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from koudai_flask.errors import NotFound, PermissionDenied, ValidationError
from koudai_flask.models import AuditEntry, Channel, Role, StaffMember
from koudai_flask.passwords import hash_password, verify
from koudai_flask.services.transaction import current_session, unit_of_work

PERMISSIONS = (
    "orders.view",
    "orders.ship",
    "orders.cancel",
    "orders.refund",
    "orders.mark_paid",
    "orders.export",
    # Change the address of an order that has not shipped (services.order_address).
    "orders.edit",
    "catalog.edit",
    "stock.adjust",
    "customers.view",
    "customers.edit",
    "customers.export",
    "marketing.manage",
    "channels.view",
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
            {
                "orders.view",
                # Mid-sized sellers' service agents pack and send parcels too.
                "orders.ship",
                "orders.cancel",
                "orders.refund",
                "orders.mark_paid",
                # The buyer writes to service with a new address.
                "orders.edit",
                "customers.view",
                "customers.edit",
            }
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


def role_definition(name: str) -> tuple[int, frozenset[str]] | None:
    """(rank, permissions) of a built-in or custom role; None when there is no such role."""
    if name in ROLES:
        return ROLES[name]
    role = current_session().scalar(select(Role).where(Role.name == name))
    if role is None:
        return None
    return role.rank, frozenset(role.permissions)


def rank_of(member: StaffMember) -> int:
    found = role_definition(member.role)
    return found[0] if found and member.active else 0


def permissions_of(member: StaffMember) -> frozenset[str]:
    found = role_definition(member.role)
    return found[1] if found and member.active else frozenset()


def can(user_id: str | int, codename: str, *, channel: str | None = None) -> bool:
    """Whether the staff member may do ``codename`` (on ``channel``, when given)."""
    _known(codename)
    member = _member(str(user_id))
    return member is not None and allows(member, codename, channel=channel)


def _known(codename: str) -> None:
    if codename not in PERMISSIONS:
        raise ValueError(f"unknown permission {codename!r}")


def allows(member: StaffMember, codename: str, *, channel: str | None = None) -> bool:
    """Whether ``member``, already loaded, may do ``codename`` (on ``channel``)."""
    _known(codename)
    if codename not in permissions_of(member):
        return False
    return channel is None or member.channels is None or channel in member.channels


def require(user_id: str | int, codename: str, *, channel: str | None = None) -> StaffMember:
    """The acting member, or ``PermissionDenied`` when they lack the permission or scope."""
    if not can(user_id, codename, channel=channel):
        where = f" on channel {channel!r}" if channel else ""
        raise PermissionDenied(f"staff {user_id} may not {codename}{where}")
    return get_member(str(user_id))


def visible_channels(member: StaffMember) -> list[str] | None:
    """The channels a member may see; None means all of them."""
    return None if member.channels is None else list(member.channels)


def _check_grant(
    granter: StaffMember, role: str, target: StaffMember | None, channels: list[str] | None
) -> None:
    """Multi-level delegation: only downwards, only what one holds, only within one's scope."""
    definition = role_definition(role)
    assert definition is not None
    rank, permissions = definition
    granter_rank, granter_permissions = rank_of(granter), permissions_of(granter)
    if target is not None and target.id == granter.id:
        raise PermissionDenied("staff cannot change their own role or scope", reason="staff_self")
    if "staff.manage" not in granter_permissions:
        raise PermissionDenied(f"{granter.user_id} may not manage staff", reason="staff_manage")
    if rank >= granter_rank:
        raise PermissionDenied(
            f"{granter.user_id} ({granter.role}) may not grant {role}",
            reason="grant_above",
            detail={"role": role},
        )
    if not permissions <= granter_permissions:
        missing = sorted(permissions - granter_permissions)
        raise PermissionDenied(
            f"{granter.user_id} may not grant permissions they lack: {', '.join(missing)}",
            reason="grant_lacking",
            detail={"permissions": missing},
        )
    if target is not None and rank_of(target) >= granter_rank:
        raise _outranked(granter, target)
    if granter.channels is not None and (
        channels is None or not set(channels) <= set(granter.channels)
    ):
        raise PermissionDenied(
            f"{granter.user_id} may grant only within their own channels", reason="grant_channels"
        )


def _outranked(granter: StaffMember, target: StaffMember) -> PermissionDenied:
    return PermissionDenied(
        f"{granter.user_id} may not change {target.user_id}",
        reason="staff_outranks",
        detail={"member": target.display_name or target.email or target.user_id},
    )


def create_role(
    name: str, permissions: list[str], *, rank: int, created_by: str | int | None = None
) -> Role:
    """A custom role. Its creator must outrank it and hold every permission it gives."""
    unknown = sorted(set(permissions) - set(PERMISSIONS))
    if unknown:
        raise ValidationError(f"unknown permission {unknown[0]!r}")
    if not name or len(name) > 40:
        raise ValidationError("a role name has 1 to 40 characters", reason="role_name")
    if name in ROLES:
        raise ValidationError(
            f"role {name!r} is built in", reason="role_taken", detail={"role": name}
        )
    if isinstance(rank, bool) or not isinstance(rank, int) or not 0 < rank < 100:
        raise ValidationError("a custom role's rank is between 1 and 99", reason="role_rank")
    with unit_of_work() as session:
        actor = "system"
        if created_by is not None:
            creator = get_member(str(created_by))
            if "staff.manage" not in permissions_of(creator):
                raise PermissionDenied(
                    f"{creator.user_id} may not manage staff", reason="staff_manage"
                )
            if rank >= rank_of(creator):
                raise PermissionDenied(
                    f"{creator.user_id} may not create a role of rank {rank}",
                    reason="role_rank_above",
                    detail={"most": rank_of(creator) - 1},
                )
            lacking = sorted(set(permissions) - permissions_of(creator))
            if lacking:
                raise PermissionDenied(
                    f"{creator.user_id} may not give permissions they lack",
                    reason="grant_lacking",
                    detail={"permissions": lacking},
                )
            actor = f"staff:{creator.user_id}"
        if session.scalar(select(Role.id).where(Role.name == name)) is not None:
            raise ValidationError(
                f"role {name!r} already exists", reason="role_taken", detail={"role": name}
            )
        role = Role(name=name, rank=rank, permissions=sorted(set(permissions)), created_by=actor)
        session.add(role)
        session.flush()
        audit(
            actor,
            "staff.create_role",
            "role",
            name,
            None,
            {"rank": rank, "permissions": role.permissions},
        )
        return role


def roles() -> list[tuple[str, int, frozenset[str]]]:
    """Every role, built-in first, as (name, rank, permissions)."""
    custom = current_session().scalars(select(Role).order_by(Role.rank.desc(), Role.name))
    return [(name, rank, perms) for name, (rank, perms) in ROLES.items()] + [
        (r.name, r.rank, frozenset(r.permissions)) for r in custom
    ]


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
    if role_definition(role) is None:
        raise ValidationError(f"unknown role {role!r}; roles: {', '.join(n for n, *_ in roles())}")
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
            _check_grant(granter, role, target, channels)
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
                raise ValidationError(
                    f"email {email!r} belongs to staff {other.user_id}",
                    reason="staff_email_taken",
                    detail={"email": email},
                )
            target.email = email
        if password is not None:
            if len(password) < 8:
                raise ValidationError(
                    "a staff password needs at least 8 characters", reason="password_short"
                )
            target.password_hash = hash_password(password)
        session.flush()
        audit(actor, "staff.grant", "staff", user_id, before, _describe(target))
        return target


def revoke(user_id: str | int, *, revoked_by: str | int | None = None) -> StaffMember:
    with unit_of_work() as session:
        target = get_member(str(user_id))
        actor = "system"
        if revoked_by is not None:
            granter = get_member(str(revoked_by))
            if target.id == granter.id:
                raise PermissionDenied(
                    f"{granter.user_id} may not revoke {target.user_id}", reason="staff_self"
                )
            if "staff.manage" not in permissions_of(granter):
                raise PermissionDenied(
                    f"{granter.user_id} may not revoke {target.user_id}", reason="staff_manage"
                )
            if rank_of(target) >= rank_of(granter):
                raise _outranked(granter, target)
            actor = f"staff:{granter.user_id}"
        before = _describe(target)
        target.active = False
        session.flush()
        audit(actor, "staff.revoke", "staff", target.user_id, before, _describe(target))
        return target


def authenticate(email: str, password: str) -> StaffMember | None:
    """Our own staff login (used when the host has no Flask-Login)."""
    with unit_of_work() as session:
        member = session.scalar(
            select(StaffMember).where(StaffMember.email == email.strip().lower())
        )
        allowed = member if member is not None and member.active else None
        return member if verify(allowed, password) else None


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
