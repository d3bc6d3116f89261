"""Units and users: read by members, managed by administrators."""

from __future__ import annotations

import uuid
from typing import Any

from backend.api import Blueprint
from backend.audit import service as audit
from backend.auth.access import current_user, roles_required
from backend.org import service
from backend.org.models import Unit, User
from backend.org.schemas import (
    MeSchema,
    UnitCreateSchema,
    UnitSchema,
    UnitUpdateSchema,
    UserCreateSchema,
    UserQuerySchema,
    UserSchema,
    UserUpdateSchema,
)
from shared.enums import Role

blp = Blueprint("org", __name__, url_prefix="/api/v1", description="Organisation and users")


@blp.route("/me")
@blp.response(200, MeSchema)
def me() -> User:
    """The signed-in user, their roles and unit."""
    user = current_user()
    audit.target("user", user.id)
    return user


@blp.route("/units")
@blp.response(200, UnitSchema(many=True))
def list_units() -> list[Unit]:
    """Your unit and every unit below it."""
    return service.list_units(current_user())


@blp.route("/units", methods=["POST"])
@roles_required(Role.ADMIN)
@blp.arguments(UnitCreateSchema)
@blp.response(201, UnitSchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def create_unit(data: dict[str, Any]) -> Unit:
    """Create a district bureau or station under a unit you administer."""
    unit = service.create_unit(
        current_user(),
        unit_id=data["id"],
        code=data["code"],
        name=data["name"],
        name_en=data["name_en"],
        tier=data["tier"],
        parent_id=data["parent_id"],
    )
    audit.target("unit", unit.id)
    return unit


@blp.route("/units/<uuid:unit_id>")
@blp.response(200, UnitSchema)
@blp.alt_response(404, response="NOT_FOUND")
def get_unit(unit_id: uuid.UUID) -> Unit:
    return service.get_unit(current_user(), unit_id)


@blp.route("/units/<uuid:unit_id>", methods=["PATCH"])
@roles_required(Role.ADMIN)
@blp.arguments(UnitUpdateSchema)
@blp.response(200, UnitSchema)
@blp.alt_response(404, response="NOT_FOUND")
def update_unit(data: dict[str, Any], unit_id: uuid.UUID) -> Unit:
    return service.update_unit(service.get_unit(current_user(), unit_id), data)


@blp.route("/users")
@roles_required(Role.ADMIN)
@blp.arguments(UserQuerySchema, location="query")
@blp.response(200, UserSchema(many=True))
def list_users(query: dict[str, Any]) -> list[User]:
    """Users of the units you administer."""
    return service.list_users(current_user(), query.get("unit_id"))


@blp.route("/users", methods=["POST"])
@roles_required(Role.ADMIN)
@blp.arguments(UserCreateSchema)
@blp.response(201, UserSchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def create_user(data: dict[str, Any]) -> User:
    actor = current_user()
    user = service.create_user(
        username=data["username"],
        display_name=data["display_name"],
        password=data["password"],
        unit=service.get_unit(actor, data["unit_id"]),
        roles=set(data["roles"]),
    )
    audit.target("user", user.id)
    return user


@blp.route("/users/<uuid:user_id>")
@roles_required(Role.ADMIN)
@blp.response(200, UserSchema)
@blp.alt_response(404, response="NOT_FOUND")
def get_user(user_id: uuid.UUID) -> User:
    return service.get_user(current_user(), user_id)


@blp.route("/users/<uuid:user_id>", methods=["PATCH"])
@roles_required(Role.ADMIN)
@blp.arguments(UserUpdateSchema)
@blp.response(200, UserSchema)
@blp.alt_response(404, response="NOT_FOUND")
def update_user(data: dict[str, Any], user_id: uuid.UUID) -> User:
    """Change a user's roles, unit, password or status; disabling ends their sessions."""
    actor = current_user()
    return service.update_user(actor, service.get_user(actor, user_id), data)
