"""Documents: templates, prefilled drafts with the rights notice, editing with If-Match,
finalising with the content hash, verification, PDFs and who reaches them."""

from __future__ import annotations

import hashlib
import json
import subprocess
import uuid
from datetime import date

import pytest
import sqlalchemy as sa

from backend.cases.models import CaseEvent
from backend.documents import pdf
from backend.documents.models import Document
from backend.documents.service import signed_kinds
from backend.extensions import db
from shared.templates import RIGHTS_NOTICE_ID, content_sha256, is_minor, load_catalogue

from support_documents import (
    MINOR_ID_NUMBER,
    add_person,
    completion,
    create,
    enroll,
    finalize,
    finalized,
    new_document,
    patch,
    signed_notification_record,
)

PROBLEM = "application/problem+json"


def test_templates_list_kinds_signers_and_question_banks(api, world):
    response = api.get("/api/v1/document-templates", world.user("a1.manager"))
    assert response.status_code == 200
    data = response.get_json()
    kinds = {k["id"]: k for k in data["kinds"]}
    assert set(kinds) >= {
        "inquiry_record",
        "interrogation_record",
        "notification_record",
        "penalty_decision",
        "seizure_list",
    }
    assert kinds["inquiry_record"]["signatures"] == ["officer", "second_officer", "party"]
    assert kinds["inquiry_record"]["body"] == "qa" and kinds["inquiry_record"]["rights_notice"]
    assert kinds["seizure_list"]["signatures"] == ["officer", "second_officer", "party", "witness"]
    assert kinds["seizure_list"]["signer_labels"]["party"]["zh"] == "持有人"
    assert kinds["interrogation_record"]["case_types"] == ["criminal"]
    templates = {t["id"]: t for t in data["templates"]}
    inquiry = templates["administrative.inquiry_record"]
    assert {"identity", "course_of_events", "injuries", "witnesses"} <= {
        q["id"] for q in inquiry["questions"]
    }
    assert "suspect" in inquiry["rights_notice"] and "default" in inquiry["rights_notice"]
    interrogation = templates["criminal.interrogation_record"]
    assert "律师" in interrogation["rights_notice"]["default"]
    assert "counsel" in {q["id"] for q in interrogation["questions"]}
    assert [s["key"] for s in templates["administrative.notification_record"]["sections"]] == [
        "facts",
        "basis",
        "proposed_penalty",
        "rights",
        "statement",
    ]


def test_draft_is_prefilled_with_real_case_and_person_data_and_starts_with_the_rights_notice(
    api, world
):
    officer = world.user("a1.officer")
    case = api.case(officer)
    person = add_person(api, officer, case["id"], phone="13900001111", address="人民路8号")
    document, etag = new_document(api, officer, case["id"], "inquiry_record", person["id"])
    assert document["status"] == "draft" and document["content_sha256"] is None
    assert etag and document["template"] == "administrative.inquiry_record"
    header = document["content"]["header"]
    assert header["case_number"] == case["number"]
    assert header["unit_name"] == "派出所a1"
    assert header["person_name"] == "李强"
    assert header["person_role"] == "违法嫌疑人"
    # The document is a legal record: real identity data, not the masked form.
    assert header["person_id_number"] == "110101198505051234"
    assert header["person_phone"] == "13900001111"
    qa = document["content"]["qa"]
    assert qa[0]["id"] == RIGHTS_NOTICE_ID and qa[0]["answer"] == ""
    assert qa[0]["question"].startswith("我们是派出所a1的民警")
    assert "拒绝回答" in qa[0]["question"]  # the suspect's version of the notice
    assert [e["id"] for e in qa[1:]] == [
        "identity",
        "course_of_events",
        "additions",
        "check_record",
    ]
    assert document["required_signatures"] == ["officer", "second_officer", "party"]
    assert document["missing_signatures"] == document["required_signatures"]

    events = api.get(f"/api/v1/cases/{case['id']}/events", officer).get_json()
    assert events[-1]["type"] == "document_created"
    assert events[-1]["payload"] == {"document_id": document["id"], "kind": "inquiry_record"}


def test_a_witness_hears_the_witness_notice_and_criminal_suspects_their_rights(api, world):
    officer = world.user("a1.officer")
    case = api.case(officer)
    witness = add_person(api, officer, case["id"], role="witness", name="王五", id_number=None)
    document, _ = new_document(api, officer, case["id"], "inquiry_record", witness["id"])
    assert "作伪证" in document["content"]["qa"][0]["question"]

    criminal = api.case(officer, "criminal")
    suspect = add_person(api, officer, criminal["id"])
    document, _ = new_document(api, officer, criminal["id"], "interrogation_record", suspect["id"])
    notice = document["content"]["qa"][0]["question"]
    assert "委托律师作为辩护人" in notice and "侦查人员" in notice
    assert document["content"]["qa"][1]["id"] == "counsel"
    assert document["content"]["header"]["person_name"] == "李强"


def test_kind_and_person_must_fit_the_case(api, world):
    officer = world.user("a1.officer")
    case = api.case(officer)
    suspect = add_person(api, officer, case["id"])
    victim = add_person(api, officer, case["id"], role="victim", name="赵六")
    other_case = api.case(officer)
    stranger = add_person(api, officer, other_case["id"])
    refused = {
        "criminal kind in an administrative case": ("interrogation_record", suspect["id"]),
        "unknown kind": ("love_letter", suspect["id"]),
        "no person": ("inquiry_record", None),
        "person of another case": ("inquiry_record", stranger["id"]),
        "unknown person": ("inquiry_record", str(uuid.uuid4())),
        "a notification is for the suspect": ("notification_record", victim["id"]),
    }
    for why, (kind, person_id) in refused.items():
        response = create(api, officer, case["id"], kind, person_id)
        assert response.status_code == 422, why
        assert response.content_type == PROBLEM
    criminal = api.case(officer, "criminal")
    criminal_suspect = add_person(api, officer, criminal["id"])
    for kind in ("notification_record", "penalty_decision"):
        response = create(api, officer, criminal["id"], kind, criminal_suspect["id"])
        assert response.status_code == 422, kind
    response = create(api, officer, case["id"], "inquiry_record", suspect["id"], extra="x")
    assert response.status_code == 422


def test_a_kind_the_platform_writes_is_not_created_by_hand(api, world, app):
    officer = world.user("a1.officer")
    templates = api.get("/api/v1/document-templates", officer).get_json()
    kinds = {k["id"]: k for k in templates["kinds"]}
    assert kinds["identification_record"]["generated"]
    assert kinds["identification_record"]["witness_if_attested"]
    assert not kinds["inquiry_record"]["generated"]

    def rows(case_id: uuid.UUID) -> tuple[int | None, int | None]:
        with app.app_context():
            return tuple(
                db.session.scalar(
                    sa.select(sa.func.count()).select_from(model).where(model.case_id == case_id)
                )
                for model in (Document, CaseEvent)
            )

    for case_type in ("administrative", "criminal"):
        case = api.case(officer, case_type)
        case_id = uuid.UUID(case["id"])
        before = rows(case_id)
        refused = create(api, officer, case["id"], "identification_record", None)
        assert refused.status_code == 422 and refused.content_type == PROBLEM
        assert "kind" in refused.get_json()["errors"]["json"]
        assert rows(case_id) == before


def test_a_minor_needs_the_guardian_and_an_interpreter_when_asked(api, world):
    officer = world.user("a1.officer")
    case = api.case(officer)
    minor = add_person(api, officer, case["id"], name="小明", id_number=MINOR_ID_NUMBER)
    document, etag = new_document(api, officer, case["id"], "inquiry_record", minor["id"])
    assert document["person_is_minor"] is True
    assert document["required_signatures"] == ["officer", "second_officer", "party", "guardian"]
    response = patch(api, officer, document["id"], etag, {"needs_interpreter": True})
    assert response.status_code == 200
    assert response.get_json()["required_signatures"][-1] == "interpreter"

    adult = add_person(api, officer, case["id"])
    document, _ = new_document(
        api, officer, case["id"], "seizure_list", adult["id"], person_is_minor=True
    )
    assert "guardian" in document["required_signatures"]


def test_an_offline_draft_is_created_once(api, world, app):
    officer = world.user("a1.officer")
    case = api.case(officer)
    person = add_person(api, officer, case["id"])
    client_id = str(uuid.uuid4())
    body = {"id": client_id, "kind": "inquiry_record", "person_id": person["id"], "title": "询问"}
    first = api.post(f"/api/v1/cases/{case['id']}/documents", officer, json=body)
    again = api.post(f"/api/v1/cases/{case['id']}/documents", officer, json=body)
    other = api.post(
        f"/api/v1/cases/{case['id']}/documents", officer, json={**body, "title": "另一份"}
    )
    assert (first.status_code, again.status_code, other.status_code) == (201, 200, 409)
    assert again.get_json()["id"] == client_id and again.get_json()["title"] == "询问"
    with app.app_context():
        count = db.session.scalar(
            sa.select(sa.func.count())
            .select_from(Document)
            .where(Document.case_id == uuid.UUID(case["id"]))
        )
    assert count == 1


def test_a_draft_is_edited_with_if_match(api, world):
    officer = world.user("a1.officer")
    case = api.case(officer)
    person = add_person(api, officer, case["id"])
    document, etag = new_document(api, officer, case["id"], "inquiry_record", person["id"])
    edit = {"header": {"place": "派出所询问室"}}

    missing = patch(api, officer, document["id"], None, edit)
    assert missing.status_code == 428 and missing.content_type == PROBLEM
    first = patch(api, officer, document["id"], etag, edit)
    assert first.status_code == 200
    new_etag = first.headers["ETag"]
    assert new_etag != etag
    stale = patch(api, officer, document["id"], etag, {"header": {"place": "别处"}})
    assert stale.status_code == 412
    assert stale.get_json()["current_etag"] == new_etag

    qa = first.get_json()["content"]["qa"]
    qa = [*qa, {"id": None, "question": "你当时喝酒了吗？", "answer": "没有。"}]
    response = patch(
        api, officer, document["id"], new_etag, {"qa": qa, "title": "询问笔录（第一次）"}
    )
    assert response.status_code == 200
    stored = api.get(f"/api/v1/documents/{document['id']}", officer).get_json()
    assert stored["title"] == "询问笔录（第一次）" == stored["content"]["title"]
    assert stored["content"]["qa"][-1]["answer"] == "没有。"
    assert stored["content"]["header"]["place"] == "派出所询问室"
    assert (
        api.get(f"/api/v1/documents/{document['id']}", officer).headers["ETag"]
        == (response.headers["ETag"])
    )


def test_the_rights_notice_and_locked_texts_cannot_be_removed_or_changed(api, world):
    officer = world.user("a1.officer")
    case = api.case(officer)
    person = add_person(api, officer, case["id"])
    document, etag = new_document(api, officer, case["id"], "inquiry_record", person["id"])
    qa = document["content"]["qa"]
    notice = qa[0]
    refused = {
        "removed": qa[1:],
        "moved": [qa[1], notice, *qa[2:]],
        "reworded": [{**notice, "question": "你听清楚了吗？"}, *qa[1:]],
        "duplicated": [notice, *qa[1:], notice],
        "id dropped": [{**notice, "id": None}, *qa[1:]],
    }
    for why, entries in refused.items():
        response = patch(api, officer, document["id"], etag, {"qa": entries})
        assert response.status_code == 422, why
    for body in (
        {"header": {"nickname": "x"}},
        {"sections": {"facts": "x"}},
        {"items": []},
        {"qa": []},
        {"status": "signed"},
        {"content_sha256": "0" * 64},
    ):
        assert patch(api, officer, document["id"], etag, body).status_code == 422, body
    answered = [{**notice, "answer": "听清楚了。"}, *qa[1:]]
    assert patch(api, officer, document["id"], etag, {"qa": answered}).status_code == 200

    notice_doc, etag = new_document(api, officer, case["id"], "notification_record", person["id"])
    rights = next(s for s in notice_doc["content"]["sections"] if s["key"] == "rights")
    assert "陈述和申辩" in rights["text"] and "李强" in rights["text"]
    response = patch(api, officer, notice_doc["id"], etag, {"sections": {"rights": "无"}})
    assert response.status_code == 422
    assert "rights" in response.get_json()["errors"]["json"]["sections"]
    response = patch(api, officer, notice_doc["id"], etag, {"sections": {"facts": "殴打他人。"}})
    assert response.status_code == 200


def test_finalising_records_the_content_hash_and_freezes_the_document(api, world):
    officer = world.user("a1.officer")
    case = api.case(officer)
    person = add_person(api, officer, case["id"])
    document, etag = new_document(api, officer, case["id"], "inquiry_record", person["id"])

    incomplete = finalize(api, officer, document["id"], etag)
    assert incomplete.status_code == 422
    errors = incomplete.get_json()["errors"]["json"]
    assert set(errors["header"]) == {"started_at", "ended_at"} and "0" in errors["qa"]
    assert finalize(api, officer, document["id"], None).status_code == 428

    response = patch(api, officer, document["id"], etag, completion(document))
    etag = response.headers["ETag"]
    response = finalize(api, officer, document["id"], etag)
    assert response.status_code == 200, response.get_json()
    final = response.get_json()
    assert final["status"] == "finalized" and final["finalized_at"]
    canonical = json.dumps(
        final["content"], sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")
    assert final["content_sha256"] == hashlib.sha256(canonical).hexdigest()
    assert final["content_sha256"] == content_sha256(final["content"])

    new_etag = response.headers["ETag"]
    for body in ({"header": {"place": "别处"}}, {"title": "改"}):
        frozen = patch(api, officer, document["id"], new_etag, body)
        assert frozen.status_code == 409 and frozen.content_type == PROBLEM
    assert finalize(api, officer, document["id"], new_etag).status_code == 409
    stored = api.get(f"/api/v1/documents/{document['id']}", officer).get_json()
    assert stored["content"] == final["content"]
    events = api.get(f"/api/v1/cases/{case['id']}/events", officer).get_json()
    assert events[-1]["type"] == "document_finalized"
    assert events[-1]["payload"]["content_sha256"] == final["content_sha256"]


def test_each_body_type_is_finalised_from_its_own_fields(api, world):
    officer = world.user("a1.officer")
    case = api.case(officer)
    person = add_person(api, officer, case["id"])
    seizure, etag = new_document(api, officer, case["id"], "seizure_list", person["id"])
    assert seizure["content"]["items"] == []
    assert seizure["content"]["header"]["place"] == "人民路1号"  # from the incident
    assert finalize(api, officer, seizure["id"], etag).status_code == 422
    final = finalized(api, officer, seizure, etag)
    assert final["content"]["items"][0]["name"] == "手机"

    decision, etag = new_document(api, officer, case["id"], "penalty_decision", person["id"])
    sections = {s["key"]: s["text"] for s in decision["content"]["sections"]}
    assert "十五日内" in sections["execution"] and "行政复议" in sections["remedies"]
    errors = finalize(api, officer, decision["id"], etag).get_json()["errors"]["json"]
    assert set(errors["sections"]) == {"facts", "basis", "decision"}
    assert finalized(api, officer, decision, etag)["status"] == "finalized"
    assert decision["required_signatures"] == ["officer", "party"]


def test_the_list_shows_no_content_and_no_identity_numbers(api, world):
    officer = world.user("a1.officer")
    case = api.case(officer)
    person = add_person(api, officer, case["id"])
    document, _ = new_document(api, officer, case["id"], "inquiry_record", person["id"])
    response = api.get(f"/api/v1/cases/{case['id']}/documents", world.user("a1.manager"))
    assert response.status_code == 200
    listed = response.get_json()
    assert [d["id"] for d in listed] == [document["id"]]
    assert "content" not in listed[0] and listed[0]["kind"] == "inquiry_record"
    assert "110101198505051234" not in response.get_data(as_text=True)


def test_signed_kinds_names_the_kinds_with_a_signed_document(api, world, app):
    officer, second = world.user("a1.officer"), world.user("a1.officer2")
    case = api.case(officer)
    person = add_person(api, officer, case["id"])
    document, etag = new_document(api, officer, case["id"], "seizure_list", person["id"])
    finalized(api, officer, document, etag)
    with app.app_context():
        assert signed_kinds(uuid.UUID(case["id"])) == set()
    signed_notification_record(api, officer, second, case["id"])
    signed_notification_record(api, officer, second, case["id"])
    with app.app_context():
        assert signed_kinds(uuid.UUID(case["id"])) == {"notification_record"}
        assert signed_kinds(uuid.uuid4()) == set()


def test_verify_reports_a_match_and_a_changed_content(api, world, app):
    officer, second = world.user("a1.officer"), world.user("a1.officer2")
    document = signed_notification_record(api, officer, second)
    case = api.get(f"/api/v1/cases/{document['case_id']}", officer).get_json()
    response = api.get(f"/api/v1/documents/{document['id']}/verify", world.user("a1.legal"))
    assert response.status_code == 200
    report = response.get_json()
    assert report["case_number"] == case["number"] and report["kind"] == "notification_record"
    assert report["status"] == "signed"
    assert report["content_sha256"] == report["computed_sha256"] == document["content_sha256"]
    assert report["matches"] is True and report["valid"] is True
    assert [(s["role"], s["signer_name"]) for s in report["signatures"]] == [
        ("officer", "a1 officer"),
        ("second_officer", "a1 officer2"),
        ("party", "李强"),
    ]
    assert all(s["covers_content"] and s["image_intact"] for s in report["signatures"])

    with app.app_context():
        stored = db.session.get_one(Document, uuid.UUID(document["id"]))
        tampered = json.loads(json.dumps(stored.content))
        tampered["sections"][0]["text"] = "篡改后的违法事实。"
        db.session.execute(
            sa.update(Document).where(Document.id == stored.id).values(content=tampered)
        )
        db.session.commit()
    report = api.get(f"/api/v1/documents/{document['id']}/verify", officer).get_json()
    assert report["matches"] is False and report["valid"] is False
    assert report["content_sha256"] == document["content_sha256"]
    assert report["computed_sha256"] == content_sha256(tampered)
    printed = api.get(f"/api/v1/documents/{document['id']}/pdf", officer)
    assert printed.status_code == 200
    text = subprocess.run(
        ["pdftotext", "-", "-"], input=printed.data, capture_output=True, check=True
    ).stdout.decode()
    assert "内容与定稿时的哈希不符" in text


def test_a_draft_is_not_printed_and_a_final_document_is(api, world, app, monkeypatch, tmp_path):
    officer = world.user("a1.officer")
    case = api.case(officer)
    person = add_person(api, officer, case["id"])
    document, etag = new_document(api, officer, case["id"], "inquiry_record", person["id"])
    draft = api.get(f"/api/v1/documents/{document['id']}/pdf", officer)
    assert draft.status_code == 409 and draft.content_type == PROBLEM
    final = finalized(api, officer, document, etag)
    try:
        pdf.find_cjk_font(app.config["PDF_FONT"])
    except pdf.FontMissing:
        pytest.skip("no CJK font on this machine")
    response = api.get(f"/api/v1/documents/{document['id']}/pdf", world.user("a1.manager"))
    assert response.status_code == 200
    assert response.content_type == "application/pdf"
    assert response.data.startswith(b"%PDF-")
    assert response.headers["Content-Disposition"].startswith("inline; filename=")
    text = subprocess.run(
        ["pdftotext", "-", "-"], input=response.data, capture_output=True, check=True
    ).stdout.decode()
    assert case["number"] in text and "询问笔录" in text and "听清楚了" in text
    assert final["content_sha256"][:16] in text.replace("\n", "").replace(" ", "")

    not_a_font = tmp_path / "not-a-font.ttf"
    not_a_font.write_text("no glyphs here")
    monkeypatch.setitem(app.config, "PDF_FONT", str(not_a_font))
    missing = api.get(f"/api/v1/documents/{document['id']}/pdf", officer)
    assert missing.status_code == 503 and missing.content_type == PROBLEM
    assert "FIELDCASE_PDF_FONT" in missing.get_json()["detail"]


def test_another_units_documents_are_not_found_on_every_route(api, world):
    officer, second = world.user("a1.officer"), world.user("a1.officer2")
    signed = signed_notification_record(api, officer, second)
    draft_case = api.case(officer)
    person = add_person(api, officer, draft_case["id"])
    draft, etag = new_document(api, officer, draft_case["id"], "inquiry_record", person["id"])
    signature = signed["signatures"][0]["id"]
    own_signed = signed_notification_record(
        api, world.user("b1.officer"), world.user("b1.officer2")
    )
    foreign_signature = own_signed["signatures"][0]["id"]

    reads = [
        f"/api/v1/cases/{draft_case['id']}/documents",
        f"/api/v1/documents/{signed['id']}",
        f"/api/v1/documents/{signed['id']}/signatures",
        f"/api/v1/documents/{signed['id']}/signatures/{signature}/image",
        f"/api/v1/documents/{signed['id']}/signatures/{signature}/fingerprint",
        f"/api/v1/documents/{signed['id']}/pdf",
        f"/api/v1/documents/{signed['id']}/verify",
    ]
    outsider_device = enroll(api, world.user("b1.officer"))
    for user in ("b1.officer", "b1.legal", "b1.manager", "a2.officer", "b.legal"):
        outsider = world.user(user)
        for path in reads:
            response = api.get(path, outsider)
            assert response.status_code == 404, (user, path)
            assert response.content_type == PROBLEM
    outsider = world.user("b1.officer")
    writes = [
        create(api, outsider, draft_case["id"], "inquiry_record", person["id"]),
        patch(api, outsider, draft["id"], etag, {"header": {"place": "x"}}),
        finalize(api, outsider, draft["id"], etag),
        outsider_device.sign(signed, "witness", "路人甲"),
    ]
    assert [r.status_code for r in writes] == [404, 404, 404, 404]
    # Own document, another unit's signature id.
    mixed = f"/api/v1/documents/{signed['id']}/signatures/{foreign_signature}/image"
    assert api.get(mixed, officer).status_code == 404
    stored = api.get(f"/api/v1/documents/{draft['id']}", officer)
    assert stored.headers["ETag"] == etag


def test_roles_that_do_not_write_cases_cannot_write_documents(api, world):
    officer = world.user("a1.officer")
    case = api.case(officer)
    person = add_person(api, officer, case["id"])
    document, etag = new_document(api, officer, case["id"], "inquiry_record", person["id"])
    for name in ("a1.legal", "a1.leader", "a1.manager", "a1.admin"):
        user = world.user(name)
        assert create(api, user, case["id"], "inquiry_record", person["id"]).status_code == 403
        assert patch(api, user, document["id"], etag, {"title": "x"}).status_code == 403
        assert finalize(api, user, document["id"], etag).status_code == 403
    admin_read = api.get(f"/api/v1/documents/{document['id']}", world.user("a1.admin"))
    assert admin_read.status_code == 403


def test_every_kind_has_a_template_per_case_type_and_an_untouched_draft_is_incomplete():
    catalogue = load_catalogue()
    for kind in catalogue.kinds.values():
        for case_type in kind.case_types:
            template = catalogue.template(case_type, kind.id)
            assert template is not None, (case_type, kind.id)
            assert template.incomplete(template.draft({}, None)), template.id


@pytest.mark.parametrize(
    ("id_number", "on", "minor"),
    [
        ("110101201501011234", date(2032, 12, 31), True),
        ("110101201501011234", date(2033, 1, 1), False),
        ("11010120150101123X", date(2026, 1, 1), True),
        ("110101201502301234", date(2026, 1, 1), None),  # 30 February
        ("110101203001011234", date(2026, 1, 1), None),  # born in the future
        ("110101150101123", date(2026, 1, 1), None),  # the old 15-digit form
        (None, date(2026, 1, 1), None),
    ],
)
def test_minority_is_read_from_the_resident_id_number(id_number, on, minor):
    assert is_minor(id_number, on) is minor
