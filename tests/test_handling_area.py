"""The case-handling area register (办案区): entries, exits, listings, and the rules that
watch them through the supervision case facts."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from flask import Flask

from backend.common import utcnow
from backend.extensions import db
from backend.supervision import service as supervision

from conftest import Api, Org, OrgUser
from support_supervision import open_warnings

ENTRIES = "/api/v1/handling-area/entries"
PROBLEM = "application/problem+json"


def at(moment: datetime) -> str:
    return moment.isoformat()


def person(api: Api, officer: OrgUser, case_id: str) -> str:
    response = api.post(
        f"/api/v1/cases/{case_id}/persons",
        officer,
        json={"role": "suspect", "name": "李四", "id_number": "110101199001011234"},
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def entry_body(**fields: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "name": "李四",
        "id_number": "110101199001011234",
        "reason": "涉嫌殴打他人，传唤询问",
        "room": "询问室2",
        **fields,
    }


def enter(api: Api, officer: OrgUser, **fields: Any) -> dict[str, Any]:
    response = api.post(ENTRIES, officer, json=entry_body(**fields))
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def supervision_of(api: Api, case_id: str, user: OrgUser) -> dict[str, Any]:
    response = api.get(f"/api/v1/cases/{case_id}/supervision", user)
    assert response.status_code == 200
    return response.get_json()


def test_an_entry_is_stored_once_and_its_exit_recorded(api: Api, world: Org):
    officer, escort = world.user("a1.officer"), world.user("a1.officer2")
    case_id = api.case(officer)["id"]
    person_id = person(api, officer, case_id)
    entered = utcnow() - timedelta(hours=1)
    body = entry_body(
        case_id=case_id, person_id=person_id, escort_ids=[str(escort.id)], entered_at=at(entered)
    )
    created = api.post(ENTRIES, officer, json=body)
    assert created.status_code == 201, created.get_json()
    entry = created.get_json()
    assert entry["id"] == body["id"]
    assert entry["unit_id"] == str(world.unit("a1").id)
    assert entry["inside"] is True and entry["exited_at"] is None
    assert entry["id_number"] == "1101**********1234"
    assert entry["escort_ids"] == [str(escort.id)]
    assert datetime.fromisoformat(entry["entered_at"]) == entered

    resent = api.post(ENTRIES, officer, json=body)
    assert resent.status_code == 200
    assert resent.get_json() == entry
    clash = api.post(ENTRIES, officer, json={**body, "room": "询问室3"})
    assert clash.status_code == 409
    assert clash.content_type == PROBLEM

    inside = api.get(f"{ENTRIES}?inside=true&case_id={case_id}", officer).get_json()["items"]
    assert [e["id"] for e in inside] == [entry["id"]]

    left = entered + timedelta(minutes=40)
    path = f"{ENTRIES}/{entry['id']}/exit"
    exited = api.post(path, officer, json={"exited_at": at(left), "note": "询问结束，离开"})
    assert exited.status_code == 200, exited.get_json()
    assert exited.get_json()["inside"] is False
    assert exited.get_json()["exited_by"] == str(officer.id)
    assert api.post(path, officer, json={"exited_at": at(left)}).status_code == 200
    assert api.post(path, officer, json={"exited_at": at(utcnow())}).status_code == 409

    assert api.get(f"{ENTRIES}?inside=true&case_id={case_id}", officer).get_json()["items"] == []
    outside = api.get(f"{ENTRIES}?inside=false&case_id={case_id}", officer).get_json()["items"]
    assert [e["id"] for e in outside] == [entry["id"]]

    facts = supervision_of(api, case_id, officer)["facts"]
    area = {(f["kind"], f["subject"]) for f in facts if f["kind"].startswith("area_")}
    assert area == {("area_entry", entry["id"]), ("area_exit", entry["id"])}
    (entry_fact,) = [f for f in facts if f["kind"] == "area_entry"]
    assert datetime.fromisoformat(entry_fact["started_at"]) == entered
    assert entry_fact["data"]["person_id"] == person_id
    events = api.get(f"/api/v1/cases/{case_id}/events", officer).get_json()
    assert [e["type"] for e in events].count("fact_recorded") == 2


def test_an_entry_without_a_case_records_no_fact(api: Api, world: Org):
    officer = world.user("a2.officer")
    entry = enter(api, officer, purpose="other", id_number=None)
    assert entry["case_id"] is None and entry["id_number"] is None
    assert entry["unit_id"] == str(world.unit("a2").id)
    response = api.post(f"{ENTRIES}/{entry['id']}/exit", officer)  # no body: exits now
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["exited_at"] is not None
    again = api.post(f"{ENTRIES}/{entry['id']}/exit", officer, json={})
    assert again.status_code == 409 and again.content_type == PROBLEM


def test_listing_by_unit_and_date(api: Api, world: Org):
    a1, a2 = world.user("a1.officer"), world.user("a2.officer")
    day = datetime.fromisoformat("2026-02-10T09:00:00+08:00")
    first = enter(api, a1, entered_at=at(day))
    second = enter(api, a2, entered_at=at(day + timedelta(hours=2)))
    late = enter(api, a1, entered_at=at(day + timedelta(hours=15)))  # 2026-02-11 local

    def listed(user: OrgUser, query: str) -> set[str]:
        response = api.get(f"{ENTRIES}?limit=200&{query}", user)
        assert response.status_code == 200, response.get_json()
        return {e["id"] for e in response.get_json()["items"]}

    leader = world.user("a.leader")
    on_day = listed(leader, "date=2026-02-10")
    assert {first["id"], second["id"]} <= on_day and late["id"] not in on_day
    assert late["id"] in listed(leader, "date=2026-02-11")
    a2_unit = listed(leader, f"date=2026-02-10&unit_id={world.unit('a2').id}")
    assert second["id"] in a2_unit and first["id"] not in a2_unit
    station = listed(world.user("a1.manager"), "date=2026-02-10")
    assert first["id"] in station and second["id"] not in station
    assert api.get(f"{ENTRIES}?date=9999-12-31", leader).get_json()["items"] == []
    foreign = api.get(f"{ENTRIES}?unit_id={world.unit('b1').id}", leader)
    assert foreign.status_code == 404


def test_area_exit_missing_fires_from_a_register_entry(app: Flask, api: Api, world: Org):
    officer = world.user("a1.officer")
    case_id = api.case(officer)["id"]
    entered = utcnow() - timedelta(hours=2)
    entry = enter(api, officer, case_id=case_id, entered_at=at(entered))
    case = uuid.UUID(case_id)
    with app.app_context():
        supervision.evaluate_case(case, entered + timedelta(hours=23, minutes=59))
        assert "area_exit_missing" not in {w.rule_id for w in open_warnings(case)}
        supervision.evaluate_case(case, entered + timedelta(hours=24, minutes=1))
        (warning,) = open_warnings(case, "area_exit_missing")
        facts = supervision_of(api, case_id, officer)["facts"]
        (entry_fact,) = [f for f in facts if f["kind"] == "area_entry"]
        assert warning.key == uuid.UUID(entry_fact["id"]).hex
        db.session.rollback()
    left = entered + timedelta(hours=1)
    exited = api.post(f"{ENTRIES}/{entry['id']}/exit", officer, json={"exited_at": at(left)})
    assert exited.status_code == 200
    with app.app_context():
        supervision.evaluate_case(case, entered + timedelta(days=3))
        assert open_warnings(case, "area_exit_missing") == []
        db.session.rollback()


@pytest.mark.parametrize(
    ("flags", "rule_id"),
    [
        ({}, "admin_questioning_time_za2025"),
        ({"detention_possible": True}, "admin_questioning_time_za2025_detention"),
        ({"many_or_identity_unknown": True}, "admin_questioning_time_za2025_many"),
    ],
)
def test_questioning_time_limits_run_from_the_entry(
    app: Flask, api: Api, world: Org, flags: dict[str, bool], rule_id: str
):
    officer = world.user("a1.officer")
    case_id = api.case(officer)["id"]
    entered = utcnow() - timedelta(minutes=30)
    entry = enter(
        api, officer, case_id=case_id, purpose="questioning", entered_at=at(entered), **flags
    )
    deadlines = supervision_of(api, case_id, officer)["deadlines"]
    (deadline,) = [d for d in deadlines if d["subject"] == entry["id"]]
    assert deadline["rule_id"] == rule_id
    warn_at = datetime.fromisoformat(deadline["warn_at"])
    case = uuid.UUID(case_id)
    with app.app_context():
        supervision.evaluate_case(case, warn_at - timedelta(seconds=1))
        assert open_warnings(case, rule_id) == []
        supervision.evaluate_case(case, warn_at)
        assert len(open_warnings(case, rule_id)) == 1
        db.session.rollback()
    exited = api.post(f"{ENTRIES}/{entry['id']}/exit", officer, json={})
    assert exited.status_code == 200
    kinds = {f["kind"] for f in supervision_of(api, case_id, officer)["facts"]}
    assert {"questioning_started", "questioning_ended", "area_entry", "area_exit"} <= kinds
    with app.app_context():
        supervision.evaluate_case(case, warn_at + timedelta(days=1))
        assert open_warnings(case, rule_id) == []
        db.session.rollback()


def test_continued_questioning_is_watched(app: Flask, api: Api, world: Org):
    officer = world.user("a1.officer")
    case_id = api.case(officer, "criminal")["id"]
    entry = enter(api, officer, case_id=case_id, purpose="continued_questioning")
    deadlines = supervision_of(api, case_id, officer)["deadlines"]
    assert [d["rule_id"] for d in deadlines if d["subject"] == entry["id"]] == [
        "continued_questioning"
    ]


def test_entry_validation(api: Api, world: Org):
    officer = world.user("a1.officer")
    case_id = api.case(officer)["id"]
    other_case = api.case(officer)["id"]
    stranger = person(api, officer, other_case)

    def refused(status: int, **fields: Any) -> None:
        response = api.post(ENTRIES, officer, json=entry_body(**fields))
        assert response.status_code == status, response.get_json()
        assert response.content_type == PROBLEM

    refused(422, person_id=stranger)
    refused(404, case_id=case_id, person_id=stranger)
    refused(404, case_id=str(uuid.uuid4()))
    refused(422, escort_ids=[str(world.user("a1.legal").id)])
    refused(422, escort_ids=[str(world.user("b1.officer").id)])
    refused(422, purpose="walk")
    refused(422, name="")
    refused(422, surprise=1)
    refused(422, detention_possible=1)
    entry = enter(api, officer, entered_at=at(utcnow() - timedelta(hours=1)))
    early = api.post(
        f"{ENTRIES}/{entry['id']}/exit",
        officer,
        json={"exited_at": at(utcnow() - timedelta(hours=2))},
    )
    assert early.status_code == 422
    assert api.get(f"{ENTRIES}/{entry['id']}", officer).get_json()["inside"] is True


def test_authorization(api: Api, world: Org):
    officer = world.user("a1.officer")
    case_id = api.case(officer)["id"]
    entry = enter(api, officer, case_id=case_id)
    path = f"{ENTRIES}/{entry['id']}"
    foreign = world.user("b1.officer")
    assert api.get(path, foreign).status_code == 404
    assert api.post(f"{path}/exit", foreign, json={}).status_code == 404
    assert api.post(ENTRIES, foreign, json=entry_body(case_id=case_id)).status_code == 404
    assert api.get(f"{ENTRIES}?case_id={case_id}", foreign).get_json()["items"] == []
    for reader in ("a1.legal", "a1.leader", "a1.manager", "a.leader", "city.manager"):
        assert api.get(path, world.user(reader)).status_code == 200, reader
    admin = world.user("a1.admin")
    assert api.get(path, admin).status_code == 403
    assert api.get(ENTRIES, admin).status_code == 403
    for role in ("a1.legal", "a1.manager", "a1.admin"):
        assert api.post(ENTRIES, world.user(role), json=entry_body()).status_code == 403
        assert api.post(f"{path}/exit", world.user(role), json={}).status_code == 403
    assert api.get(path, world.user("a1.officer2")).get_json()["inside"] is True
