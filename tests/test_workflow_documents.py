"""Workflow steps that require signed documents (``requires_signed``).

An administrative decision (``submit_decision``) cannot be approved, at any of
its stages, before the case holds a signed notification record (行政处罚告知笔录);
it may be requested before, and returned at any time. The requirement is data
in the workflow file, checked by the loader and shown to clients.
"""

from __future__ import annotations

import copy
import tomllib
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

import shared.workflows
from backend.documents.models import Document
from backend.extensions import db
from shared.enums import DocumentStatus
from shared.workflow import WorkflowError, _parse, workflow_for

from conftest import Api, Org, OrgUser
from support_documents import (
    add_person,
    display_name,
    enroll,
    finalized,
    new_document,
    sign_required,
)
from support_workflow import sign_notification_record

PROBLEM = "application/problem+json"
NOTIFY = {
    "facts": "两人互殴",
    "reasons_and_basis": "治安管理处罚法第43条",
    "hearing_requested": False,
}
DECISION = {"penalty": "fine", "penalty_detail": "罚款500元"}
WORKFLOW_DIR = Path(shared.workflows.__file__).parent


# Helpers


def events(api: Api, case_id: str, user: OrgUser) -> list[dict[str, Any]]:
    response = api.get(f"/api/v1/cases/{case_id}/events", user)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def snapshot(api: Api, case_id: str, user: OrgUser) -> tuple[str, int]:
    return api.etag(case_id, user), len(events(api, case_id, user))


def status(api: Api, case_id: str, user: OrgUser) -> str:
    return api.get(f"/api/v1/cases/{case_id}", user).get_json()["status"]


def step(api: Api, case_id: str, user: OrgUser, action: str, payload: Any, code: int) -> None:
    response = api.step(case_id, user, action, payload)
    assert response.status_code == code, response.get_json()


def notified_case(api: Api, officer: OrgUser) -> str:
    """An administrative case in ``notified`` without any document."""
    case_id = api.case(officer, "administrative")["id"]
    step(api, case_id, officer, "start_investigation", None, 200)
    step(api, case_id, officer, "notify", NOTIFY, 200)
    return case_id


def requested_decision(api: Api, officer: OrgUser) -> str:
    """A decision requested before any document exists: waiting for the legal officer."""
    case_id = notified_case(api, officer)
    step(api, case_id, officer, "submit_decision", DECISION, 202)
    assert status(api, case_id, officer) == "legal_review"
    return case_id


def refused_approval(api: Api, case_id: str, user: OrgUser) -> dict[str, Any]:
    """Approving the pending stage is refused for the unsigned notification record,
    and changes nothing: the approval stays pending, no case event is written."""
    before = snapshot(api, case_id, user)
    approval = api.pending_approval(case_id, user)
    response = api.decide(approval["id"], user, "approve", "同意")
    body = response.get_json(force=True)
    assert response.status_code == 409, body
    assert response.content_type == PROBLEM
    assert body["type"] == "urn:fieldcase:problem:documents-unsigned"
    assert body["missing_signed"] == ["notification_record"]
    assert "Notification record" in body["detail"] and "行政处罚告知笔录" in body["detail"]
    assert snapshot(api, case_id, user) == before
    stored = api.get(f"/api/v1/approvals/{approval['id']}", user).get_json()
    assert (stored["status"], stored["decided_by"], stored["decided_at"]) == ("pending", None, None)
    assert api.pending_approval(case_id, user)["id"] == approval["id"]
    return body


def approve(api: Api, case_id: str, user: OrgUser) -> dict[str, Any]:
    approval = api.pending_approval(case_id, user)
    response = api.decide(approval["id"], user, "approve", "同意")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def case_actions(api: Api, case_id: str, user: OrgUser) -> dict[str, dict[str, Any]]:
    response = api.get(f"/api/v1/cases/{case_id}/actions", user)
    assert response.status_code == 200, response.get_json()
    return {a["name"]: a for a in response.get_json()}


# Approving, returning


def test_a_decision_is_not_approved_before_the_notification_record_is_signed(
    api: Api, world: Org
) -> None:
    officer, legal = world.user("a1.officer"), world.user("a1.legal")
    # Requesting is allowed: the officer may prepare the decision while the party
    # still has to sign.
    case_id = requested_decision(api, officer)
    refused_approval(api, case_id, legal)
    # Another legal officer with the right to decide gets the same answer.
    refused_approval(api, case_id, world.user("a.legal"))
    assert [e["type"] for e in events(api, case_id, officer)][-1] == "step_requested"
    assert status(api, case_id, officer) == "legal_review"


def test_a_draft_or_a_record_not_signed_by_everyone_does_not_count(api: Api, world: Org) -> None:
    officer, second, legal = (world.user(f"a1.{n}") for n in ("officer", "officer2", "legal"))
    case_id = requested_decision(api, officer)
    person = add_person(api, officer, case_id)
    draft, etag = new_document(api, officer, case_id, "notification_record", person["id"])
    assert draft["status"] == "draft"
    refused_approval(api, case_id, legal)

    document = finalized(api, officer, draft, etag)
    assert document["status"] == "finalized"
    refused_approval(api, case_id, legal)

    device = enroll(api, officer)
    for role, name, user in (
        ("officer", display_name(officer), officer),
        ("second_officer", display_name(second), second),
    ):
        response = device.sign(document, role, name, user=user)
        assert response.status_code == 201, response.get_json()
        refused_approval(api, case_id, legal)

    response = device.sign(document, "party", person["name"])
    assert response.status_code == 201, response.get_json()
    signed = api.get(f"/api/v1/documents/{document['id']}", officer).get_json()
    assert signed["status"] == "signed"
    assert approve(api, case_id, legal)["case"]["status"] == "leader_approval"


def test_other_kinds_and_other_cases_do_not_count(api: Api, world: Org) -> None:
    officer, second, legal = (world.user(f"a1.{n}") for n in ("officer", "officer2", "legal"))
    case_id = requested_decision(api, officer)
    # A fully signed inquiry record is not a notification record.
    person = add_person(api, officer, case_id)
    inquiry, etag = new_document(api, officer, case_id, "inquiry_record", person["id"])
    inquiry = finalized(api, officer, inquiry, etag)
    for response in sign_required(enroll(api, officer), inquiry, (officer, second), "李强"):
        assert response.status_code == 201, response.get_json()
    assert api.get(f"/api/v1/documents/{inquiry['id']}", officer).get_json()["status"] == "signed"
    # A signed notification record of another case does not count either.
    sign_notification_record(api, world, officer, notified_case(api, officer))
    refused_approval(api, case_id, legal)


def test_once_signed_the_decision_is_approved_to_the_end(api: Api, world: Org) -> None:
    officer, legal, leader = (world.user(f"a1.{n}") for n in ("officer", "legal", "leader"))
    case_id = requested_decision(api, officer)
    refused_approval(api, case_id, legal)
    document = sign_notification_record(api, world, officer, case_id)

    assert approve(api, case_id, legal)["case"]["status"] == "leader_approval"
    result = approve(api, case_id, leader)
    assert (result["outcome"], result["case"]["status"]) == ("applied", "decided")
    history = events(api, case_id, officer)
    assert [(e["type"], e["action"]) for e in history[-8:]] == [
        ("step_requested", "submit_decision"),
        ("person_added", None),
        ("document_created", None),
        ("document_finalized", None),
        ("document_signed", None),
        ("step_approved", "submit_decision"),
        ("step_approved", "submit_decision"),
        ("transition", "submit_decision"),
    ]
    assert history[-4]["payload"]["document_id"] == document["id"]


def test_every_stage_checks_the_documents(app: Flask, api: Api, world: Org) -> None:
    """The leader's stage is refused too when the record is (no longer) signed.

    No request takes a signature back; the test withdraws the signed status in
    the database to reach a leader stage without a signed record.
    """
    officer, legal, leader = (world.user(f"a1.{n}") for n in ("officer", "legal", "leader"))
    case_id = notified_case(api, officer)
    document = sign_notification_record(api, world, officer, case_id)
    step(api, case_id, officer, "submit_decision", DECISION, 202)
    assert approve(api, case_id, legal)["case"]["status"] == "leader_approval"
    with app.app_context():
        db.session.execute(
            sa.update(Document)
            .where(Document.id == uuid.UUID(document["id"]))
            .values(status=DocumentStatus.FINALIZED)
        )
        db.session.commit()
    refused_approval(api, case_id, leader)
    response = api.decide(api.pending_approval(case_id, leader)["id"], leader, "return", "先签名")
    assert response.status_code == 200, response.get_json()
    assert status(api, case_id, officer) == "notified"


def test_a_decision_can_be_returned_without_the_signed_record(api: Api, world: Org) -> None:
    officer, legal = world.user("a1.officer"), world.user("a1.legal")
    case_id = requested_decision(api, officer)
    approval = api.pending_approval(case_id, legal)
    response = api.decide(approval["id"], legal, "return", "请先让当事人在告知笔录上签名")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["outcome"], body["case"]["status"]) == ("returned", "notified")
    assert events(api, case_id, officer)[-1]["type"] == "step_returned"
    # The returned approval is decided: approving it now is refused as such, not
    # for the documents.
    failed = api.decide(approval["id"], legal, "approve", "同意").get_json()
    assert failed["type"] == "urn:fieldcase:problem:approval-decided"
    # The officer may ask again at once.
    step(api, case_id, officer, "submit_decision", DECISION, 202)


def test_steps_without_the_requirement_are_approved_as_before(api: Api, world: Org) -> None:
    officer = world.user("a1.officer")
    case_id = notified_case(api, officer)
    step(api, case_id, officer, "decide_no_punishment", {"reason": "情节轻微"}, 202)
    approve(api, case_id, world.user("a1.legal"))
    assert approve(api, case_id, world.user("a1.leader"))["case"]["status"] == "no_punishment"


# What clients are told


def test_workflows_show_which_steps_require_signed_documents(api: Api, world: Org) -> None:
    response = api.get("/api/v1/workflows", world.user("a1.officer"))
    assert response.status_code == 200
    required = {
        (w["case_type"], a["name"]): a["requires_signed"]
        for w in response.get_json()
        for a in w["actions"]
        if a["requires_signed"]
    }
    assert required == {("administrative", "submit_decision"): ["notification_record"]}
    assert workflow_for("administrative").actions["submit_decision"].requires_signed == (
        "notification_record",
    )


def test_case_actions_show_the_documents_still_unsigned(api: Api, world: Org) -> None:
    officer = world.user("a1.officer")
    case_id = notified_case(api, officer)
    offered = case_actions(api, case_id, officer)
    submit = offered["submit_decision"]
    assert (submit["requires_signed"], submit["missing_signed"]) == (
        ["notification_record"],
        ["notification_record"],
    )
    for name, action in offered.items():
        if name != "submit_decision":
            assert (action["requires_signed"], action["missing_signed"]) == ([], []), name
    # Every reader of the case with the officer role sees the same.
    assert case_actions(api, case_id, world.user("a1.officer2")) == offered

    person = add_person(api, officer, case_id)
    draft, etag = new_document(api, officer, case_id, "notification_record", person["id"])
    finalized(api, officer, draft, etag)
    assert case_actions(api, case_id, officer)["submit_decision"]["missing_signed"] == [
        "notification_record"
    ]
    sign_notification_record(api, world, officer, case_id)
    submit = case_actions(api, case_id, officer)["submit_decision"]
    assert (submit["requires_signed"], submit["missing_signed"]) == (["notification_record"], [])


def test_the_openapi_document_describes_the_fields(api: Api) -> None:
    spec = api.get("/api/openapi.json").get_json()
    case_action = spec["components"]["schemas"]["CaseAction"]["properties"]
    for name in ("requires_signed", "missing_signed"):
        assert case_action[name]["type"] == "array"
        assert case_action[name]["items"] == {"type": "string"}
        assert case_action[name]["description"]


# The loader


def raw_administrative() -> dict[str, Any]:
    text = (WORKFLOW_DIR / "administrative.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def with_requirement(action: str, value: Any, raw: dict[str, Any] | None = None) -> Any:
    raw = copy.deepcopy(raw or raw_administrative())
    raw["actions"][action]["requires_signed"] = value
    return raw


def test_the_shipped_requirement_parses() -> None:
    raw = raw_administrative()
    assert raw["actions"]["submit_decision"]["requires_signed"] == ["notification_record"]
    assert _parse(copy.deepcopy(raw)) == workflow_for("administrative")
    without = copy.deepcopy(raw)
    del without["actions"]["submit_decision"]["requires_signed"]
    assert _parse(without).actions["submit_decision"].requires_signed == ()


@pytest.mark.parametrize(
    ("action", "value", "message"),
    [
        ("submit_decision", ["notice_of_nothing"], "unknown document kind 'notice_of_nothing'"),
        (
            "submit_decision",
            ["notification_record", "Notification_Record"],
            "unknown document kind 'Notification_Record'",
        ),
        ("submit_decision", ["interrogation_record"], "not a document of administrative cases"),
        ("submit_decision", "notification_record", "must be a list of document kinds"),
        ("submit_decision", [None], "must be a list of document kinds"),
        ("submit_decision", ["notification_record"] * 2, "names a kind twice"),
        ("execute", ["notification_record"], "needs approvals"),
    ],
)
def test_the_loader_refuses_bad_requirements(action: str, value: Any, message: str) -> None:
    with pytest.raises(WorkflowError, match=message):
        _parse(with_requirement(action, value))


def test_a_criminal_step_cannot_require_an_administrative_kind() -> None:
    text = (WORKFLOW_DIR / "criminal.toml").read_text(encoding="utf-8")
    raw = with_requirement("file_case", ["notification_record"], tomllib.loads(text))
    with pytest.raises(WorkflowError, match="'notification_record' is not a document of criminal"):
        _parse(raw)
    assert _parse(with_requirement("file_case", ["inquiry_record"], tomllib.loads(text)))
