"""API keys of the open platform: created by staff, shown once, stored hashed, revocable.

A key reads ``kd_<prefix>_<secret>``. Only the prefix (to find the row) and the SHA-256 of
the secret are stored: the secret is 256 random bits, so a plain hash cannot be reversed by
guessing, and nothing depends on ``SECRET_KEY`` (rotating it keeps every key working).

A key acts as its owner, a staff member, and never beyond them: on each call its scopes are
intersected with what the owner's role grants at that moment, and its channel list with the
owner's channel scope. Revoking the owner's role disables their keys as well.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update

from koudai_flask.errors import KoudaiError, NotFound, PermissionDenied, ValidationError
from koudai_flask.models import ApiKey, Channel, StaffMember
from koudai_flask.models.base import utcnow
from koudai_flask.services import staff
from koudai_flask.services.transaction import current_session, unit_of_work

KEY_PREFIX = "kd"
# last_used_at is written at most this often per key (reads are not a write each).
LAST_USED_RESOLUTION = timedelta(seconds=60)


class InvalidApiKey(KoudaiError):
    """The request carried no API key, an unknown or malformed one, or a revoked one."""

    http_status = 401


@dataclass(frozen=True)
class Principal:
    """Who an API call acts as: the key, its owner and what it may do right now."""

    key_id: int
    key_prefix: str
    user_id: str
    scopes: frozenset[str]
    # Channel names the call may touch; None: every channel.
    channels: frozenset[str] | None

    def allows(self, scope: str) -> bool:
        return scope in self.scopes

    def sees_channel(self, channel: str) -> bool:
        return self.channels is None or channel in self.channels


@dataclass(frozen=True)
class CreatedKey:
    key: ApiKey
    token: str  # the whole key; shown once, never stored


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _check_scopes(scopes: list[str]) -> list[str]:
    if not scopes:
        raise ValidationError(
            "an API key needs at least one scope", {"scopes": ["required"]}, reason="key_scopes"
        )
    unknown = sorted(set(scopes) - set(staff.PERMISSIONS))
    if unknown:
        raise ValidationError(
            f"unknown scope {unknown[0]!r}; scopes are the permission codenames: "
            + ", ".join(staff.PERMISSIONS),
            {"scopes": [f"unknown scope {name!r}" for name in unknown]},
        )
    return sorted(set(scopes))


def _check_channels(owner: StaffMember, channels: list[str] | None) -> list[str] | None:
    if channels is None:
        if owner.channels is not None:
            raise PermissionDenied(
                f"{owner.user_id} is limited to channels {', '.join(owner.channels)}: "
                "name the key's channels among them"
            )
        return None
    if not channels:
        raise ValidationError("name at least one channel, or none for every channel")
    known = set(current_session().scalars(select(Channel.name).where(Channel.name.in_(channels))))
    unknown = sorted(set(channels) - known)
    if unknown:
        raise NotFound(f"unknown channel {unknown[0]!r}")
    if owner.channels is not None and not set(channels) <= set(owner.channels):
        raise PermissionDenied(f"{owner.user_id} may not act on channel(s) outside their scope")
    return sorted(set(channels))


def create(
    owner: str | int,
    name: str,
    scopes: list[str],
    *,
    channels: list[str] | None = None,
    created_by: str | int | None = None,
) -> CreatedKey:
    """A new key for staff member ``owner``; the returned token is the only copy.

    ``created_by=None`` is the system (the CLI); otherwise that member needs
    ``staff.manage`` and must be the owner or outrank them. A key gets only scopes its owner
    holds (``PermissionDenied`` otherwise) and stays within the owner's channels.
    """
    name = (name or "").strip()
    if not 1 <= len(name) <= 120:
        raise ValidationError(
            "a key's name is 1 to 120 characters", {"name": ["length"]}, reason="key_name"
        )
    wanted = _check_scopes(list(scopes))
    with unit_of_work() as session:
        member = staff.get_member(str(owner))
        actor = "system"
        if created_by is not None:
            creator = staff.require(str(created_by), "staff.manage")
            if creator.id != member.id and staff.rank_of(member) >= staff.rank_of(creator):
                raise PermissionDenied(f"{creator.user_id} may not create keys for {owner}")
            actor = f"staff:{creator.user_id}"
        lacking = sorted(set(wanted) - staff.permissions_of(member))
        if lacking:
            raise PermissionDenied(
                f"{member.user_id} ({member.role}) does not hold {', '.join(lacking)}",
                reason="key_scope_lacking",
                detail={"permissions": lacking},
            )
        key_channels = _check_channels(member, channels)
        prefix = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        key = ApiKey(
            prefix=prefix,
            secret_hash=_hash(secret),
            name=name,
            owner_id=member.id,
            scopes=wanted,
            channels=key_channels,
            created_by=actor,
        )
        session.add(key)
        session.flush()
        staff.audit(
            actor,
            "api_key.create",
            "api_key",
            prefix,
            None,
            {"name": name, "owner": member.user_id, "scopes": wanted, "channels": key_channels},
        )
        return CreatedKey(key, f"{KEY_PREFIX}_{prefix}_{secret}")


def revoke(prefix: str, *, revoked_by: str | int | None = None) -> ApiKey:
    """Revoke a key at once (its next call is 401); revoking twice changes nothing."""
    with unit_of_work() as session:
        key = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
        if key is None:
            raise NotFound(f"unknown API key {prefix!r}")
        actor = "system"
        if revoked_by is not None:
            member = staff.require(str(revoked_by), "staff.manage")
            if key.owner_id != member.id and staff.rank_of(key.owner) >= staff.rank_of(member):
                raise PermissionDenied(f"{member.user_id} may not revoke this key")
            actor = f"staff:{member.user_id}"
        if key.revoked_at is None:
            key.revoked_at = utcnow()
            session.flush()
            staff.audit(actor, "api_key.revoke", "api_key", prefix, {"revoked": False}, None)
        return key


def visible_keys(user_id: str | int) -> list[ApiKey]:
    """The keys a manager may see: their own and those of members ranked below them."""
    member = staff.require(str(user_id), "staff.manage")
    rank = staff.rank_of(member)
    keys = current_session().scalars(select(ApiKey).order_by(ApiKey.id.desc())).all()
    return [k for k in keys if k.owner_id == member.id or staff.rank_of(k.owner) < rank]


def all_keys() -> list[ApiKey]:
    return list(current_session().scalars(select(ApiKey).order_by(ApiKey.id)))


def authenticate(token: str | None) -> Principal:
    """The principal of a bearer token, or ``InvalidApiKey``; records the use cheaply."""
    if not token:
        raise InvalidApiKey("send the API key as 'Authorization: Bearer kd_...'")
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or not parts[1] or not parts[2]:
        raise InvalidApiKey("malformed API key")
    session = current_session()
    key = session.scalar(select(ApiKey).where(ApiKey.prefix == parts[1]))
    if key is None or not hmac.compare_digest(key.secret_hash, _hash(parts[2])):
        raise InvalidApiKey("unknown API key")
    if key.revoked_at is not None:
        raise InvalidApiKey("this API key was revoked")
    owner = key.owner
    if not owner.active:
        raise InvalidApiKey("the owner of this API key is no longer staff")
    scopes = frozenset(key.scopes) & staff.permissions_of(owner)
    channels: frozenset[str] | None = None
    if key.channels is not None:
        channels = frozenset(key.channels)
    if owner.channels is not None:
        channels = frozenset(owner.channels) & (channels or frozenset(owner.channels))
    principal = Principal(key.id, key.prefix, owner.user_id, scopes, channels)
    now = utcnow()
    if key.last_used_at is None or key.last_used_at < now - LAST_USED_RESOLUTION:
        _mark_used(key.id, now)
    return principal


def _mark_used(key_id: int, now: datetime) -> None:
    """One conditional UPDATE: of concurrent calls in the same minute, one writes."""
    with unit_of_work() as session:
        session.execute(
            update(ApiKey)
            .execution_options(synchronize_session=False)
            .where(
                ApiKey.id == key_id,
                or_(
                    ApiKey.last_used_at.is_(None),
                    ApiKey.last_used_at < now - LAST_USED_RESOLUTION,
                ),
            )
            .values(last_used_at=now)
        )
