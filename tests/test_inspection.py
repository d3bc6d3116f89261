"""Inspections (巡查): key incidents, inspection results, problems and their rectification."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from flask import Flask

from backend.common import utcnow
from backend.extensions import db
from backend.inspection.models import Problem

from conftest import Api, Org, OrgUser
from support_documents import add_person, new_document

PROBLEM = "application/problem+json"
PROBLEMS = "/api/v1/problems"


def soon(**delta: Any) -> str:
    return (utcnow() + timedelta(**(delta or {"days": 7}))).isoformat()


def file(api: Api, user: OrgUser, **fields: Any) -> Any:
    body = {
        "category": "irregular_record",
        "description": "询问笔录未记载询问起止时间。",
        "deadline": soon(),
        **fields,
    }
    return api.post(PROBLEMS, user, json=body)


def filed(api: Api, user: OrgUser, **fields: Any) -> dict[str, Any]:
    response = file(api, user, **fields)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def event_types(api: Api, case_id: str, user: OrgUser) -> list[str]:
    response = api.get(f"/api/v1/cases/{case_id}/events?limit=200", user)
    return [e["type"] for e in response.get_json()]


def test_marking_key_incidents(api: Api, world: Org):
    officer, legal = world.user("a1.officer"), world.user("a1.legal")
    incident = api.incident(officer)
    path = f"/api/v1/incidents/{incident['id']}/key"
    marked = api.post(path, legal, json={"reason": "涉及未成年人，舆情敏感"})
    assert marked.status_code == 201, marked.get_json()
    assert marked.get_json()["marked_by"] == str(legal.id)
    assert marked.get_json()["unit_id"] == str(world.unit("a1").id)
    again = api.post(path, world.user("a1.leader"), json={"reason": "重复"})
    assert again.status_code == 409 and again.content_type == PROBLEM
    assert api.post(path, legal, json={"reason": ""}).status_code == 422

    for reader in ("a1.legal", "a.leader", "a1.manager"):
        response = api.get("/api/v1/key-incidents?limit=200", world.user(reader))
        assert response.status_code == 200
        assert incident["id"] in {k["incident_id"] for k in response.get_json()["items"]}, reader
    a2_only = api.get(f"/api/v1/key-incidents?unit_id={world.unit('a2').id}", legal)
    assert a2_only.status_code == 404  # a1's legal officer does not see station a2
    b_district = api.get("/api/v1/key-incidents?limit=200", world.user("b.legal")).get_json()
    assert incident["id"] not in {k["incident_id"] for k in b_district["items"]}

    other = api.incident(officer)
    other_path = f"/api/v1/incidents/{other['id']}/key"
    assert api.post(other_path, world.user("b1.legal"), json={"reason": "x"}).status_code == 404
    for role in ("a1.officer", "a1.manager", "a1.admin"):
        assert api.post(other_path, world.user(role), json={"reason": "x"}).status_code == 403
    assert api.get("/api/v1/key-incidents", officer).status_code == 403


def test_inspecting_cases_and_incidents(api: Api, world: Org):
    officer, legal = world.user("a1.officer"), world.user("a1.legal")
    case_id = api.case(officer)["id"]
    response = api.post(
        f"/api/v1/cases/{case_id}/inspections",
        legal,
        json={"result": "problems_found", "note": "笔录不规范"},
    )
    assert response.status_code == 201, response.get_json()
    inspection = response.get_json()
    assert inspection["case_id"] == case_id and inspection["incident_id"] is None
    assert inspection["inspector_id"] == str(legal.id)
    events = api.get(f"/api/v1/cases/{case_id}/events?limit=200", officer).get_json()
    (inspected,) = [e for e in events if e["type"] == "inspected"]
    assert inspected["payload"] == {"inspection_id": inspection["id"], "result": "problems_found"}
    assert inspected["comment"] == "笔录不规范"

    incident = api.incident(officer)
    by_leader = api.post(
        f"/api/v1/incidents/{incident['id']}/inspections",
        world.user("a.leader"),
        json={"result": "ok"},
    )
    assert by_leader.status_code == 201
    assert by_leader.get_json()["incident_id"] == incident["id"]

    listed = api.get(f"/api/v1/inspections?case_id={case_id}", world.user("a1.manager"))
    assert [i["id"] for i in listed.get_json()["items"]] == [inspection["id"]]
    ok_only = api.get(f"/api/v1/inspections?result=ok&incident_id={incident['id']}", legal)
    assert [i["id"] for i in ok_only.get_json()["items"]] == [by_leader.get_json()["id"]]

    foreign = world.user("b1.legal")
    assert (
        api.post(f"/api/v1/cases/{case_id}/inspections", foreign, json={"result": "ok"}).status_code
        == 404
    )
    assert (
        api.post(
            f"/api/v1/incidents/{incident['id']}/inspections", foreign, json={"result": "ok"}
        ).status_code
        == 404
    )
    assert api.get(f"/api/v1/inspections?case_id={case_id}", foreign).get_json()["items"] == []
    for role in ("a1.officer", "a1.manager", "a1.admin"):
        response = api.post(
            f"/api/v1/cases/{case_id}/inspections", world.user(role), json={"result": "ok"}
        )
        assert response.status_code == 403, role
    assert api.get("/api/v1/inspections", officer).status_code == 403
    bad = api.post(f"/api/v1/cases/{case_id}/inspections", legal, json={"result": "fine"})
    assert bad.status_code == 422


def test_problem_categories_are_data(api: Api, world: Org):
    response = api.get(f"{PROBLEMS}/categories", world.user("a1.officer"))
    assert response.status_code == 200
    codes = {c["code"]: c["zh"] for c in response.get_json()}
    assert codes["irregular_record"] == "笔录不规范"
    assert codes["late_acceptance"] == "受案不及时"
    assert "other" in codes
    assert api.get(f"{PROBLEMS}/categories", world.user("a1.admin")).status_code == 403


def test_a_problem_is_rectified_to_closure(api: Api, world: Org):
    officer, legal = world.user("a1.officer"), world.user("a1.legal")
    case_id = api.case(officer)["id"]
    inspection = api.post(
        f"/api/v1/cases/{case_id}/inspections", legal, json={"result": "problems_found"}
    ).get_json()
    problem = filed(
        api, legal, case_id=case_id, inspection_id=inspection["id"], responsible_id=str(officer.id)
    )
    assert problem["status"] == "open" and problem["unit_id"] == str(world.unit("a1").id)
    assert "problem_filed" in event_types(api, case_id, officer)
    path = f"{PROBLEMS}/{problem['id']}"

    mine = api.get(f"{PROBLEMS}?mine=true&case_id={case_id}", officer).get_json()["items"]
    assert [p["id"] for p in mine] == [problem["id"]]
    colleague = world.user("a1.officer2")
    assert api.get(path, colleague).status_code == 404
    assert api.get(f"{PROBLEMS}?case_id={case_id}", colleague).get_json()["items"] == []
    assert api.post(f"{path}/rectification", colleague, json={"note": "x"}).status_code == 404

    person = add_person(api, officer, case_id)
    document, _ = new_document(api, officer, case_id, "inquiry_record", person["id"])
    other_case = api.case(officer)["id"]
    other_person = add_person(api, officer, other_case)
    foreign_doc, _ = new_document(api, officer, other_case, "inquiry_record", other_person["id"])
    wrong = api.post(
        f"{path}/rectification",
        officer,
        json={"note": "已补正", "document_ids": [foreign_doc["id"]]},
    )
    assert wrong.status_code == 422 and wrong.content_type == PROBLEM
    unknown = api.post(
        f"{path}/rectification",
        officer,
        json={"note": "已补正", "evidence_ids": [str(uuid.uuid4())]},
    )
    assert unknown.status_code == 422
    assert api.get(path, officer).get_json()["status"] == "open"
    assert api.post(f"{path}/review", legal, json={"decision": "accept"}).status_code == 409

    submitted = api.post(
        f"{path}/rectification",
        officer,
        json={"note": "已补正笔录", "document_ids": [document["id"]]},
    )
    assert submitted.status_code == 200, submitted.get_json()
    assert submitted.get_json()["status"] == "submitted"
    assert submitted.get_json()["rectifications"][0]["document_ids"] == [document["id"]]
    assert api.post(f"{path}/rectification", officer, json={"note": "再次"}).status_code == 409

    assert api.post(f"{path}/review", legal, json={"decision": "return"}).status_code == 422
    returned = api.post(
        f"{path}/review", legal, json={"decision": "return", "comment": "起止时间仍未写明"}
    )
    assert returned.status_code == 200
    assert returned.get_json()["status"] == "open"
    assert returned.get_json()["closed_at"] is None
    assert [r["kind"] for r in returned.get_json()["rectifications"]] == ["submitted", "returned"]

    api.post(f"{path}/rectification", officer, json={"note": "已写明起止时间"})
    accepted = api.post(f"{path}/review", world.user("a1.leader"), json={"decision": "accept"})
    assert accepted.status_code == 200
    assert accepted.get_json()["status"] == "closed"
    assert accepted.get_json()["closed_at"] is not None
    kinds = [
        r["kind"] for r in api.get(path, world.user("a1.manager")).get_json()["rectifications"]
    ]
    assert kinds == ["submitted", "returned", "submitted", "accepted"]
    history = [t for t in event_types(api, case_id, officer) if "problem" in t or "rect" in t]
    assert history == [
        "problem_filed",
        "rectification_submitted",
        "rectification_returned",
        "rectification_submitted",
        "rectification_accepted",
    ]
    assert api.post(f"{path}/rectification", officer, json={"note": "x"}).status_code == 409
    assert api.post(f"{path}/review", legal, json={"decision": "accept"}).status_code == 409


def test_filing_a_problem_is_validated(api: Api, world: Org):
    officer, legal = world.user("a1.officer"), world.user("a1.legal")
    case_id = api.case(officer)["id"]
    incident = api.incident(officer)
    responsible = str(officer.id)

    def refused(status: int, **fields: Any) -> None:
        response = file(api, legal, **fields)
        assert response.status_code == status, response.get_json()
        assert response.content_type == PROBLEM

    refused(422, responsible_id=responsible)  # neither case nor incident
    refused(422, case_id=case_id, incident_id=incident["id"], responsible_id=responsible)
    refused(422, case_id=case_id, responsible_id=str(world.user("a1.legal").id))
    refused(422, case_id=case_id, responsible_id=str(world.user("a2.officer").id))
    refused(422, case_id=case_id, responsible_id=str(uuid.uuid4()))
    refused(422, case_id=case_id, responsible_id=responsible, deadline=soon(days=-1))
    refused(422, case_id=case_id, responsible_id=responsible, category="粗心")
    refused(422, case_id=case_id, responsible_id=responsible, inspection_id=str(uuid.uuid4()))
    refused(404, case_id=str(uuid.uuid4()), responsible_id=responsible)
    on_incident = filed(
        api,
        world.user("a.legal"),
        incident_id=incident["id"],
        responsible_id=responsible,
        category="late_acceptance",
    )
    assert on_incident["incident_id"] == incident["id"] and on_incident["case_id"] is None
    path = f"{PROBLEMS}/{on_incident['id']}/rectification"
    no_case = api.post(path, officer, json={"note": "x", "document_ids": [str(uuid.uuid4())]})
    assert no_case.status_code == 422
    assert api.post(path, officer, json={"note": "已及时受案"}).status_code == 200


def test_problem_authorization(api: Api, world: Org):
    officer = world.user("a1.officer")
    case_id = api.case(officer)["id"]
    problem = filed(api, world.user("a1.legal"), case_id=case_id, responsible_id=str(officer.id))
    path = f"{PROBLEMS}/{problem['id']}"
    foreign = world.user("b1.legal")
    assert file(api, foreign, case_id=case_id, responsible_id=str(officer.id)).status_code == 404
    assert api.get(path, foreign).status_code == 404
    assert api.post(f"{path}/review", foreign, json={"decision": "accept"}).status_code == 404
    assert (
        api.post(f"{path}/rectification", world.user("b1.officer"), json={"note": "x"}).status_code
        == 404
    )
    for reader in ("a1.manager", "a.manager", "city.leader"):
        assert api.get(path, world.user(reader)).status_code == 200, reader
    for role in ("a1.officer", "a1.manager", "a1.admin"):
        response = file(api, world.user(role), case_id=case_id, responsible_id=str(officer.id))
        assert response.status_code == 403, role
        assert (
            api.post(f"{path}/review", world.user(role), json={"decision": "accept"}).status_code
            == 403
        )
    for role in ("a1.legal", "a1.manager", "a1.admin"):
        assert (
            api.post(f"{path}/rectification", world.user(role), json={"note": "x"}).status_code
            == 403
        )
    admin = world.user("a1.admin")
    assert api.get(path, admin).status_code == 403
    assert api.get(PROBLEMS, admin).status_code == 403


def test_the_responsible_officer_with_other_roles(api: Api, world: Org, multi_role_user: OrgUser):
    officer = world.user("a1.officer")
    case_id = api.case(officer)["id"]
    problem = filed(api, world.user("a1.legal"), case_id=case_id, responsible_id=str(officer.id))
    path = f"{PROBLEMS}/{problem['id']}/rectification"
    # sees the problem as a legal officer, but is not the one to fix it
    response = api.post(path, multi_role_user, json={"note": "代为整改"})
    assert response.status_code == 403


def test_overdue_problems_are_visible(app: Flask, api: Api, world: Org):
    officer, legal = world.user("a2.officer"), world.user("a2.legal")
    case_id = api.case(officer)["id"]
    late = filed(api, legal, case_id=case_id, responsible_id=str(officer.id))
    on_time = filed(api, legal, case_id=case_id, responsible_id=str(officer.id))
    closed_late = filed(api, legal, case_id=case_id, responsible_id=str(officer.id))
    api.post(f"{PROBLEMS}/{closed_late['id']}/rectification", officer, json={"note": "已整改"})
    assert (
        api.post(
            f"{PROBLEMS}/{closed_late['id']}/review", legal, json={"decision": "accept"}
        ).status_code
        == 200
    )
    with app.app_context():
        for problem_id in (late["id"], closed_late["id"]):
            db.session.get_one(Problem, uuid.UUID(problem_id)).deadline = utcnow() - timedelta(
                hours=1
            )
        db.session.commit()

    def ids(user: OrgUser, query: str) -> set[str]:
        response = api.get(f"{PROBLEMS}?case_id={case_id}&{query}", user)
        assert response.status_code == 200, response.get_json()
        return {p["id"] for p in response.get_json()["items"]}

    assert ids(legal, "overdue=true") == {late["id"]}
    assert ids(legal, "overdue=false") == {on_time["id"], closed_late["id"]}
    assert ids(officer, "overdue=true") == {late["id"]}
    assert ids(legal, "status=closed") == {closed_late["id"]}
    assert ids(legal, "category=other") == set()
    assert ids(world.user("a.manager"), f"unit_id={world.unit('a2').id}&overdue=true") == {
        late["id"]
    }
