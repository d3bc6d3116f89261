"""The organisation tree, users and who may see which unit."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from flask import g

from backend.auth import service as auth
from backend.common import utcnow
from backend.errors import Conflict, Forbidden, NotFound, Unprocessable
from backend.extensions import db
from backend.org.models import Unit, User, UserRole
from shared.enums import Role, UnitTier

CHILD_TIER = {UnitTier.CITY: UnitTier.DISTRICT, UnitTier.DISTRICT: UnitTier.STATION}
MIN_PASSWORD_LENGTH = 10


def subtree_ids(unit: Unit) -> list[uuid.UUID]:
    return list(db.session.scalars(sa.select(Unit.id).where(Unit.path.startswith(unit.path))))


def visible_unit_ids(user: User) -> frozenset[uuid.UUID]:
    """Units whose data ``user`` may see: their own and every unit below it.

    Computed once per request.
    """
    cache = g.setdefault("visible_units", {})
    if user.id not in cache:
        cache[user.id] = frozenset(subtree_ids(user.unit))
    return cache[user.id]


def get_unit(user: User, unit_id: uuid.UUID) -> Unit:
    unit = db.session.get(Unit, unit_id)
    if unit is None or unit.id not in visible_unit_ids(user):
        raise NotFound("No such unit.")
    return unit


def list_units(user: User) -> list[Unit]:
    return list(
        db.session.scalars(
            sa.select(Unit).where(Unit.path.startswith(user.unit.path)).order_by(Unit.path)
        )
    )


def create_unit(
    user: User,
    *,
    code: str,
    name: str,
    tier: UnitTier,
    parent_id: uuid.UUID | None,
    name_en: str | None = None,
    unit_id: uuid.UUID | None = None,
) -> Unit:
    parent = get_unit(user, parent_id) if parent_id else None
    if parent is None:
        raise Unprocessable("A unit needs a parent within your organisation.")
    if CHILD_TIER.get(parent.tier) != tier:
        raise Unprocessable(f"A {parent.tier} unit cannot hold a {tier} unit.")
    if db.session.scalar(sa.select(Unit.id).where(Unit.code == code)):
        raise Conflict("A unit with this code exists.")
    if unit_id is not None and db.session.get(Unit, unit_id) is not None:
        raise Conflict("A unit with this id exists.")
    unit = Unit(
        id=unit_id or uuid.uuid4(),
        code=code,
        name=name,
        name_en=name_en,
        tier=tier,
        parent_id=parent.id,
    )
    unit.path = f"{parent.path}{unit.id.hex}/"
    db.session.add(unit)
    db.session.flush()
    g.pop("visible_units", None)
    return unit


def create_root_unit(*, code: str, name: str, name_en: str | None = None) -> Unit:
    """The city bureau at the top of a new organisation (CLI only)."""
    unit = Unit(id=uuid.uuid4(), code=code, name=name, name_en=name_en, tier=UnitTier.CITY)
    unit.path = f"/{unit.id.hex}/"
    db.session.add(unit)
    db.session.flush()
    return unit


def update_unit(unit: Unit, changes: dict[str, Any]) -> Unit:
    for field in ("name", "name_en"):
        if field in changes:
            setattr(unit, field, changes[field])
    db.session.flush()
    return unit


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Unprocessable(
            f"A password needs at least {MIN_PASSWORD_LENGTH} characters.",
            errors={"json": {"password": ["Too short."]}},
        )


def create_user(
    *,
    username: str,
    display_name: str,
    password: str,
    unit: Unit,
    roles: set[Role],
) -> User:
    name = auth.normalise_username(username)
    if db.session.scalar(sa.select(User.id).where(User.username == name)):
        raise Conflict("A user with this user name exists.")
    _check_password(password)
    user = User(
        username=name,
        display_name=display_name,
        unit_id=unit.id,
        password_hash=auth.hash_password(password),
        role_rows=[UserRole(role=r) for r in sorted(roles)],
    )
    db.session.add(user)
    db.session.flush()
    return user


def get_user(actor: User, user_id: uuid.UUID) -> User:
    user = db.session.get(User, user_id)
    if user is None or user.unit_id not in visible_unit_ids(actor):
        raise NotFound("No such user.")
    return user


def list_users(actor: User, unit_id: uuid.UUID | None = None) -> list[User]:
    units = visible_unit_ids(actor)
    if unit_id is not None:
        units = frozenset({unit_id}) & units
    return list(
        db.session.scalars(sa.select(User).where(User.unit_id.in_(units)).order_by(User.username))
    )


def update_user(actor: User, user: User, changes: dict[str, Any]) -> User:
    """Apply an administrator's changes; disabling a user ends their sessions at once."""
    if "display_name" in changes:
        user.display_name = changes["display_name"]
    if "unit_id" in changes:
        user.unit_id = get_unit(actor, changes["unit_id"]).id
    if "roles" in changes:
        if user.id == actor.id and Role.ADMIN not in changes["roles"]:
            raise Forbidden("Administrators cannot remove their own administrator role.")
        user.role_rows = [UserRole(role=r) for r in sorted(set(changes["roles"]))]
    if "password" in changes:
        _check_password(changes["password"])
        user.password_hash = auth.hash_password(changes["password"])
        auth.revoke_user_sessions(user.id, "password_changed")
    if "active" in changes and changes["active"] != user.active:
        if user.id == actor.id:
            raise Forbidden("Administrators cannot disable themselves.")
        user.active = changes["active"]
        user.disabled_at = None if user.active else utcnow()
        if not user.active:
            auth.revoke_user_sessions(user.id, "user_disabled")
    db.session.flush()
    return user
