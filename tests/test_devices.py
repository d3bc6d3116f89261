"""Device enrolment, revocation and the verification of device signatures (checklist C2)."""

from __future__ import annotations

import uuid

import pytest
from flask import Flask

from backend.devices import service
from backend.devices.models import Device
from backend.errors import Forbidden, Problem
from backend.extensions import db
from backend.org.models import User
from shared import signing

PROBLEM = "application/problem+json"


def enroll(api, user, key=None, device_id=None):
    key = key or signing.new_private_key()
    body = {
        "device_id": device_id or f"phone-{uuid.uuid4().hex[:12]}",
        "name": "执法记录手机",
        "public_key": signing.public_key_text(key),
    }
    return api.post("/api/v1/devices", user, json=body), body, key


def test_enrolment_is_kept_and_a_resend_changes_nothing(api, world, app: Flask):
    officer = world.user("a1.officer")
    first, body, _ = enroll(api, officer)
    again = api.post("/api/v1/devices", officer, json=body)
    assert (first.status_code, again.status_code) == (201, 200)
    device = first.get_json()
    assert again.get_json()["id"] == device["id"]
    assert device["active"] is True
    assert device["user_id"] == str(officer.id)
    assert device["unit_id"] == str(world.unit("a1").id)
    with app.app_context():
        assert db.session.query(Device).filter_by(device_id=body["device_id"]).count() == 1


def test_a_device_id_cannot_be_taken_over_by_another_key_or_user(api, world):
    officer = world.user("a1.officer")
    _, body, _ = enroll(api, officer)
    other_key = {**body, "public_key": signing.public_key_text(signing.new_private_key())}
    for user, payload in ((officer, other_key), (world.user("a1.officer2"), body)):
        response = api.post("/api/v1/devices", user, json=payload)
        assert response.status_code == 409
        assert response.content_type == PROBLEM


@pytest.mark.parametrize(
    "public_key",
    ["not base64!", signing.b64encode(b"\x01" * 31), signing.b64encode(b"\x01" * 33), ""],
)
def test_a_malformed_public_key_is_refused(api, world, public_key):
    officer = world.user("a1.officer")
    response = api.post(
        "/api/v1/devices",
        officer,
        json={"device_id": f"bad-{uuid.uuid4().hex[:8]}", "name": "x", "public_key": public_key},
    )
    assert response.status_code == 422
    assert response.content_type == PROBLEM


def test_bad_device_ids_and_unknown_fields_are_refused(api, world):
    officer = world.user("a1.officer")
    key = signing.public_key_text(signing.new_private_key())
    for body in (
        {"device_id": "has space", "name": "x", "public_key": key},
        {"device_id": "x" * 65, "name": "x", "public_key": key},
        {"device_id": "ok-id", "name": "x", "public_key": key, "owner": "someone"},
    ):
        response = api.post("/api/v1/devices", officer, json=body)
        assert response.status_code == 422, body
        assert response.content_type == PROBLEM


def test_users_see_their_own_devices_and_administrators_those_of_their_units(api, world):
    officer, colleague = world.user("a1.officer"), world.user("a1.officer2")
    mine = enroll(api, officer)[0].get_json()["id"]
    theirs = enroll(api, colleague)[0].get_json()["id"]
    foreign = enroll(api, world.user("b1.officer"))[0].get_json()["id"]

    listed = {d["id"] for d in api.get("/api/v1/devices", officer).get_json()}
    assert mine in listed and theirs not in listed
    assert api.get(f"/api/v1/devices/{theirs}", officer).status_code == 403

    admin = world.user("a1.admin")
    seen = {d["id"] for d in api.get("/api/v1/devices", admin).get_json()}
    assert {mine, theirs} <= seen and foreign not in seen
    assert api.get(f"/api/v1/devices/{foreign}", admin).status_code == 404
    district_admin = {d["id"] for d in api.get("/api/v1/devices", world.user("a.admin")).get_json()}
    assert {mine, theirs} <= district_admin and foreign not in district_admin


def test_only_an_administrator_of_the_unit_revokes(api, world):
    officer = world.user("a1.officer")
    device = enroll(api, officer)[0].get_json()
    path = f"/api/v1/devices/{device['id']}/revoke"
    body = {"reason": "手机遗失"}
    assert api.post(path, officer, json=body).status_code == 403
    assert api.post(path, world.user("b1.admin"), json=body).status_code == 404
    admin = world.user("a1.admin")
    assert api.get(f"/api/v1/devices/{device['id']}", admin).get_json()["active"] is True

    revoked = api.post(path, admin, json=body)
    assert revoked.status_code == 200
    assert revoked.get_json()["active"] is False
    assert revoked.get_json()["revoked_reason"] == "手机遗失"


def _verify(app: Flask, user_id: uuid.UUID, device_id: str, fields: dict, signature: str) -> Device:
    with app.app_context():
        user = db.session.get_one(User, user_id)
        return service.verify_submission(user, device_id, "evidence", fields, signature)


def test_verification_accepts_the_enrolled_key_and_refuses_everything_else(api, world, app):
    officer = world.user("a1.officer")
    response, body, key = enroll(api, officer)
    fields = {"sha256": "ab" * 32, "case_id": str(uuid.uuid4()), "place": "人民路1号"}
    good = signing.sign(key, "evidence", fields)
    assert _verify(app, officer.id, body["device_id"], fields, good).id == uuid.UUID(
        response.get_json()["id"]
    )

    refusals = {
        "other content": ({**fields, "sha256": "cd" * 32}, good),
        "other purpose": (fields, signing.sign(key, "signature", fields)),
        "other key": (fields, signing.sign(signing.new_private_key(), "evidence", fields)),
        "not base64": (fields, "@@@"),
        "short": (fields, signing.b64encode(b"\0" * 10)),
    }
    for name, (signed_fields, signature) in refusals.items():
        with pytest.raises(Problem) as refused:
            _verify(app, officer.id, body["device_id"], signed_fields, signature)
        assert refused.value.status == 422, name
        assert refused.value.slug == "bad-device-signature", name

    with pytest.raises(Problem) as unknown:
        _verify(app, world.user("a1.officer2").id, body["device_id"], fields, good)
    assert unknown.value.slug == "device-not-enrolled"

    api.post(
        f"/api/v1/devices/{response.get_json()['id']}/revoke",
        world.user("a1.admin"),
        json={"reason": "设备被盗"},
    )
    with pytest.raises(Forbidden):
        _verify(app, officer.id, body["device_id"], fields, good)


def test_the_canonical_form_is_stable_and_refuses_floats():
    a = signing.canonical_form("evidence", {"b": 1, "a": "张", "c": {"y": [1, 2], "x": None}})
    b = signing.canonical_form("evidence", {"c": {"x": None, "y": [1, 2]}, "a": "张", "b": 1})
    assert a == b == '{"a":"张","b":1,"c":{"x":null,"y":[1,2]},"purpose":"evidence"}'.encode()
    with pytest.raises(signing.SigningError):
        signing.canonical_form("evidence", {"latitude": 30.25})
    with pytest.raises(signing.SigningError):
        signing.canonical_form("evidence", {"points": [[1, 2.5]]})


def test_the_signing_command_makes_keys_and_signatures_the_server_accepts(tmp_path, capsys):
    key_file = tmp_path / "device.pem"
    assert signing.main(["keygen", str(key_file)]) == 0
    public_key = capsys.readouterr().out.strip()
    assert key_file.stat().st_mode & 0o777 == 0o600
    fields = {"sha256": "ab" * 32, "place": "人民路1号"}
    assert (
        signing.main(
            [
                "sign",
                str(key_file),
                "evidence",
                '{"sha256": "' + "ab" * 32 + '", "place": "人民路1号"}',
            ]
        )
        == 0
    )
    signature = capsys.readouterr().out.strip()
    assert signing.verify(public_key, "evidence", fields, signature)
    assert not signing.verify(public_key, "signature", fields, signature)
