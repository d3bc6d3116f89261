"""Enrolment, revocation and verification of device signatures."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa

from backend.common import utcnow
from backend.devices.models import Device
from backend.errors import Conflict, Forbidden, NotFound, Problem
from backend.extensions import db
from backend.org.models import User
from backend.org.service import visible_unit_ids
from shared import signing
from shared.enums import Role


def enroll(user: User, device_id: str, name: str, public_key: str) -> tuple[Device, bool]:
    """Enrol the caller's device; a resend of the same enrolment changes nothing."""
    try:
        signing.load_public_key(public_key)
    except (signing.SigningError, ValueError) as exc:
        raise Problem(
            "public_key must be a raw Ed25519 public key in base64 (32 bytes).",
            status=422,
            slug="invalid-public-key",
        ) from exc
    existing = db.session.scalar(sa.select(Device).where(Device.device_id == device_id))
    if existing is not None:
        if existing.user_id == user.id and existing.public_key == public_key:
            return existing, False
        raise Conflict("This device id is already enrolled with another key or user.")
    device = Device(
        device_id=device_id, user_id=user.id, unit_id=user.unit_id, name=name, public_key=public_key
    )
    db.session.add(device)
    db.session.flush()
    return device, True


def _visible(user: User) -> sa.ColumnElement[bool]:
    """Administrators see the devices of their units; everyone else sees their own."""
    if user.has_role(Role.ADMIN):
        return sa.or_(Device.user_id == user.id, Device.unit_id.in_(visible_unit_ids(user)))
    return Device.user_id == user.id


def list_devices(user: User) -> list[Device]:
    query = sa.select(Device).where(_visible(user)).order_by(Device.enrolled_at, Device.id)
    return list(db.session.scalars(query))


def get_device(user: User, device_pk: uuid.UUID, *, for_update: bool = False) -> Device:
    query = sa.select(Device).where(Device.id == device_pk, _visible(user))
    device = db.session.scalar(query.with_for_update() if for_update else query)
    if device is None:
        raise NotFound("No such device.")
    return device


def revoke(actor: User, device: Device, reason: str) -> Device:
    """Revoke a device of the administrator's units; its submissions are refused from now."""
    if device.unit_id not in visible_unit_ids(actor):
        raise NotFound("No such device.")
    if device.revoked_at is None:
        device.revoked_at = utcnow()
        device.revoked_by = actor.id
        device.revoked_reason = reason
    return device


def verify_submission(
    user: User, device_id: str, purpose: str, fields: dict[str, Any], signature: str
) -> Device:
    """The caller's enrolled, unrevoked device whose key signed ``fields``.

    Raises 422 for an unknown device or a signature that does not verify, 403
    for a revoked device.
    """
    device = db.session.scalar(
        sa.select(Device).where(Device.device_id == device_id, Device.user_id == user.id)
    )
    if device is None:
        raise Problem(
            "The device is not enrolled for this user.", status=422, slug="device-not-enrolled"
        )
    if device.revoked_at is not None:
        raise Forbidden("The device has been revoked; its submissions are refused.")
    try:
        valid = signing.verify(device.public_key, purpose, fields, signature)
    except signing.SigningError as exc:
        raise Problem(str(exc), status=422, slug="bad-device-signature") from exc
    if not valid:
        raise Problem(
            "The device signature does not match the submission.",
            status=422,
            slug="bad-device-signature",
        )
    return device
