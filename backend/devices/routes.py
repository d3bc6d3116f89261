"""Device enrolment (any signed-in user, for themselves) and revocation (administrators)."""

from __future__ import annotations

import uuid
from typing import Any

from backend.api import Blueprint
from backend.audit import service as audit
from backend.auth.access import current_user, roles_required
from backend.devices import service
from backend.devices.models import Device
from backend.devices.schemas import DeviceSchema, EnrollSchema, RevokeSchema
from shared.enums import Role

blp = Blueprint(
    "devices", __name__, url_prefix="/api/v1", description="Field devices and their keys"
)


@blp.route("/devices", methods=["POST"])
@blp.arguments(EnrollSchema)
@blp.response(201, DeviceSchema)
@blp.alt_response(200, schema=DeviceSchema, description="Resent with the same id and key")
@blp.alt_response(409, response="CONFLICT")
def enroll(data: dict[str, Any]) -> tuple[Device, int]:
    """Enrol the caller's device and the public half of its Ed25519 signing key."""
    device, created = service.enroll(
        current_user(), data["device_id"], data["name"], data["public_key"]
    )
    audit.target("device", device.id)
    return device, 201 if created else 200


@blp.route("/devices")
@blp.response(200, DeviceSchema(many=True))
def list_devices() -> list[Device]:
    """Your devices; administrators also see the devices of their units."""
    return service.list_devices(current_user())


@blp.route("/devices/<uuid:device_pk>")
@roles_required(Role.ADMIN)
@blp.response(200, DeviceSchema)
@blp.alt_response(404, response="NOT_FOUND")
def get_device(device_pk: uuid.UUID) -> Device:
    """A device of your units (administrators); users see their own in the list."""
    device = service.get_device(current_user(), device_pk)
    audit.target("device", device.id)
    return device


@blp.route("/devices/<uuid:device_pk>/revoke", methods=["POST"])
@roles_required(Role.ADMIN)
@blp.arguments(RevokeSchema)
@blp.response(200, DeviceSchema)
@blp.alt_response(404, response="NOT_FOUND")
def revoke(data: dict[str, Any], device_pk: uuid.UUID) -> Device:
    """Revoke a device of your units (lost, stolen, retired); its submissions are refused."""
    user = current_user()
    device = service.revoke(
        user, service.get_device(user, device_pk, for_update=True), data["reason"]
    )
    audit.target("device", device.id, reason=data["reason"])
    return device
