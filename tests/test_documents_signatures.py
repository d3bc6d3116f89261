"""Signatures: over the finalised content hash, from an enrolled device, each role once,
two different officers, images checked by their bytes; complete → signed and frozen."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from backend.documents.models import DocumentSignature
from backend.extensions import db
from shared import signing

from support_documents import (
    add_person,
    b64,
    display_name,
    enroll,
    finalized,
    finalized_notification_record,
    jpeg_bytes,
    new_document,
    patch,
    png_bytes,
    sign_required,
)

PROBLEM = "application/problem+json"


def test_all_required_signatures_make_the_document_signed_and_immutable(api, world, app):
    officer, second = world.user("a1.officer"), world.user("a1.officer2")
    document, person = finalized_notification_record(api, officer)
    device = enroll(api, officer)
    fingerprint = jpeg_bytes()
    first, middle, last = (
        device.sign(document, "officer", "a1 officer", user=officer),
        device.sign(document, "second_officer", "a1 officer2", user=second),
        device.sign(
            document,
            "party",
            person["name"],
            id_number="110101198505051234",
            fingerprint=fingerprint,
            image=png_bytes(shade=9),
        ),
    )
    assert [r.status_code for r in (first, middle, last)] == [201, 201, 201]
    signature = last.get_json()
    assert signature["signer_id_number"] == "1101**********1234"
    assert signature["fingerprint_type"] == "image/jpeg"
    assert signature["device_id"] == device.device_id

    stored = api.get(f"/api/v1/documents/{document['id']}", officer)
    data = stored.get_json()
    assert data["status"] == "signed" and data["signed_at"] and data["missing_signatures"] == []
    assert [s["role"] for s in data["signatures"]] == ["officer", "second_officer", "party"]
    events = api.get(f"/api/v1/cases/{document['case_id']}/events", officer).get_json()
    assert [e["type"] for e in events[-3:]] == [
        "document_created",
        "document_finalized",
        "document_signed",
    ]

    reader = world.user("a1.manager")
    listed = api.get(f"/api/v1/documents/{document['id']}/signatures", reader)
    assert listed.status_code == 200 and len(listed.get_json()) == 3
    assert "image_png" not in listed.get_data(as_text=True)
    base = f"/api/v1/documents/{document['id']}/signatures/{signature['id']}"
    image = api.get(f"{base}/image", reader)
    assert (image.status_code, image.content_type) == (200, "image/png")
    assert image.data == png_bytes(shade=9)
    print_ = api.get(f"{base}/fingerprint", reader)
    assert (print_.status_code, print_.content_type, print_.data) == (
        200,
        "image/jpeg",
        fingerprint,
    )
    no_print = api.get(
        f"/api/v1/documents/{document['id']}/signatures/{first.get_json()['id']}/fingerprint",
        reader,
    )
    assert no_print.status_code == 404 and no_print.content_type == PROBLEM

    # Signed: nothing more, not even an optional signer, and no edits.
    witness = device.sign(document, "witness", "路人甲")
    assert witness.status_code == 409 and witness.content_type == PROBLEM
    etag = stored.headers["ETag"]
    assert patch(api, officer, document["id"], etag, {"title": "改"}).status_code == 409
    with app.app_context():
        rows = db.session.query(DocumentSignature)
        count = rows.filter_by(document_id=uuid.UUID(document["id"])).count()
    assert count == 3


def test_a_draft_or_a_changed_document_cannot_be_signed(api, world):
    officer = world.user("a1.officer")
    case = api.case(officer)
    person = add_person(api, officer, case["id"])
    draft, etag = new_document(api, officer, case["id"], "notification_record", person["id"])
    device = enroll(api, officer)
    stale = "a" * 64
    response = device.sign(draft, "party", person["name"], content_sha256=stale)
    assert response.status_code == 409 and response.content_type == PROBLEM

    final = finalized(api, officer, draft, etag)
    response = device.sign(final, "party", person["name"], content_sha256=stale)
    assert response.status_code == 409
    assert response.get_json()["content_sha256"] == final["content_sha256"]
    assert device.sign(final, "party", person["name"]).status_code == 201


def test_images_are_checked_by_their_bytes(api, world):
    officer = world.user("a1.officer")
    document, person = finalized_notification_record(api, officer)
    device = enroll(api, officer)
    png = png_bytes()
    broken_crc = png[:-5] + bytes([png[-5] ^ 0xFF]) + png[-4:]
    truncated = png[:-12]
    refused_images = {
        "a JPEG": jpeg_bytes(),
        "text": b"this is not an image at all",
        "a PNG signature only": b"\x89PNG\r\n\x1a\n",
        "a bad chunk CRC": broken_crc,
        "no IEND": truncated,
    }
    for why, image in refused_images.items():
        response = device.sign(document, "party", person["name"], image=image)
        assert response.status_code == 422, why
        assert "image_png" in response.get_json()["errors"]["json"], why
    response = device.sign(document, "party", person["name"], fingerprint=b"GIF89a....")
    assert response.status_code == 422
    assert "fingerprint_png" in response.get_json()["errors"]["json"]
    not_base64 = device.body(document, "party", person["name"]) | {"image_png": "%%%"}
    response = api.post(f"/api/v1/documents/{document['id']}/signatures", officer, json=not_base64)
    assert response.status_code == 422
    for strokes in ([[[1.5, 2, 0]]], [[[1, 2]]], [], [[]], [[[1, 2, -1]]], [[["1", 2, 0]]]):
        body = device.body(document, "party", person["name"]) | {"strokes": strokes}
        response = api.post(f"/api/v1/documents/{document['id']}/signatures", officer, json=body)
        assert response.status_code == 422, strokes
    long_stroke = [[[i, i, i] for i in range(401)]]
    too_many_strokes = [[[1, 1, 1]]] * 101
    for strokes in (long_stroke, too_many_strokes, [[[1, 1, 3_600_001]]]):
        response = device.sign(document, "party", person["name"], strokes=strokes)
        assert response.status_code == 422
    assert (
        device.sign(document, "party", person["name"], fingerprint=png_bytes()).status_code == 201
    )


def test_forged_unknown_and_revoked_devices_are_refused(api, world):
    officer = world.user("a1.officer")
    document, person = finalized_notification_record(api, officer)
    device = enroll(api, officer)
    path = f"/api/v1/documents/{document['id']}/signatures"

    forged = device.sign(document, "party", person["name"], key=signing.new_private_key())
    assert forged.status_code == 422 and forged.content_type == PROBLEM
    altered = device.body(document, "party", person["name"]) | {"signer_name": "王五"}
    assert api.post(path, officer, json=altered).status_code == 422
    other_image = device.body(document, "party", person["name"]) | {
        "image_png": b64(png_bytes(shade=3))
    }
    assert api.post(path, officer, json=other_image).status_code == 422
    later = device.body(document, "party", person["name"])
    later["signed_at"] = (
        datetime.fromisoformat(later["signed_at"]) + timedelta(seconds=1)
    ).isoformat()
    assert api.post(path, officer, json=later).status_code == 422
    unknown = device.body(document, "party", person["name"]) | {"device_id": "never-enrolled"}
    assert api.post(path, officer, json=unknown).status_code == 422
    # Another officer's device is not the submitter's.
    colleague = enroll(api, world.user("a1.officer2"))
    borrowed = colleague.body(document, "party", person["name"])
    assert api.post(path, officer, json=borrowed).status_code == 422

    revoke = api.post(
        f"/api/v1/devices/{device.pk}/revoke", world.user("a1.admin"), json={"reason": "手机遗失"}
    )
    assert revoke.status_code == 200, revoke.get_json()
    revoked = device.sign(document, "party", person["name"])
    assert revoked.status_code == 403 and revoked.content_type == PROBLEM
    listed = api.get(path, officer).get_json()
    assert listed == []


def test_each_role_signs_once_and_two_different_officers_sign(api, world):
    officer, second = world.user("a1.officer"), world.user("a1.officer2")
    document, _ = finalized_notification_record(api, officer)
    device = enroll(api, officer)
    assert device.sign(document, "officer", "a1 officer", user=officer).status_code == 201
    same_officer = device.sign(document, "second_officer", "a1 officer", user=officer)
    assert same_officer.status_code == 409 and same_officer.content_type == PROBLEM
    again = device.sign(document, "officer", "a1 officer2", user=second)
    assert again.status_code == 409
    assert device.sign(document, "witness", "路人甲").status_code == 201
    assert device.sign(document, "witness", "路人乙").status_code == 409
    assert device.sign(document, "second_officer", "a1 officer2", user=second).status_code == 201
    state = api.get(f"/api/v1/documents/{document['id']}", officer).get_json()
    assert state["status"] == "finalized" and state["missing_signatures"] == ["party"]


def test_signers_must_be_who_they_claim(api, world):
    officer = world.user("a1.officer")
    document, person = finalized_notification_record(api, officer)
    device = enroll(api, officer)
    refused = {
        "officer without a user": device.body(document, "officer", "a1 officer"),
        "a legal officer as officer": device.body(
            document, "officer", "a1 legal", user=world.user("a1.legal")
        ),
        "an officer of another unit": device.body(
            document, "officer", "b1 officer", user=world.user("b1.officer")
        ),
        "another name than the officer's": device.body(document, "officer", "张警官", user=officer),
        "a party with another name": device.body(document, "party", "王五"),
        "a witness who is a user": device.body(
            document, "witness", "a1 officer2", user=world.user("a1.officer2")
        ),
        "signed in the future": device.body(
            document, "party", person["name"], signed_at=datetime.now(UTC) + timedelta(hours=1)
        ),
    }
    path = f"/api/v1/documents/{document['id']}/signatures"
    for why, body in refused.items():
        response = api.post(path, officer, json=body)
        assert response.status_code == 422, (why, response.get_json())
    assert api.get(path, officer).get_json() == []
    assert device.sign(document, "officer", display_name(officer), user=officer).status_code == 201


def test_a_resent_signature_is_stored_once(api, world):
    officer, second = world.user("a1.officer"), world.user("a1.officer2")
    document, person = finalized_notification_record(api, officer)
    device = enroll(api, officer)
    signature_id = str(uuid.uuid4())
    body = device.body(document, "party", person["name"], signature_id=signature_id)
    path = f"/api/v1/documents/{document['id']}/signatures"
    assert api.post(path, officer, json=body).status_code == 201
    for response in sign_required(device, document, (officer, second), person["name"])[:2]:
        assert response.status_code == 201
    resent = api.post(path, officer, json=body)  # the document is signed by now
    assert resent.status_code == 200 and resent.get_json()["id"] == signature_id
    other = device.body(
        document, "party", person["name"], signature_id=signature_id, image=png_bytes(shade=1)
    )
    assert api.post(path, officer, json=other).status_code == 409
    assert len(api.get(path, officer).get_json()) == 3


def test_signature_bodies_may_exceed_the_global_cap_up_to_eight_mib(api, world, app):
    officer = world.user("a1.officer")
    document, person = finalized_notification_record(api, officer)
    device = enroll(api, officer)
    assert app.config["MAX_CONTENT_LENGTH"] < 1_500_000
    big_fingerprint = b"\xff\xd8\xff\xe0" + bytes(1_400_000) + b"\xff\xd9"
    response = device.sign(
        document,
        "party",
        person["name"],
        fingerprint=big_fingerprint,
        headers={"Idempotency-Key": f"sig-{uuid.uuid4().hex}"},
    )
    assert response.status_code == 201, response.get_json()
    too_big = device.body(document, "witness", "路人甲") | {"image_png": "A" * (9 * 1024 * 1024)}
    response = api.post(f"/api/v1/documents/{document['id']}/signatures", officer, json=too_big)
    assert response.status_code == 413 and response.content_type == PROBLEM
    elsewhere = api.patch(
        f"/api/v1/documents/{document['id']}",
        officer,
        json={"title": "x" * 1_200_000},
        headers={"If-Match": "x"},
    )
    assert elsewhere.status_code == 413
