"""Incidents, cases, persons and the case list."""

from __future__ import annotations

import uuid

from backend.cases.models import Case, CasePerson, Incident
from backend.extensions import db

PROBLEM = "application/problem+json"


def test_incident_is_created_masked_and_listed(api, world):
    officer = world.user("a1.officer")
    incident = api.incident(officer, latitude=30.25, longitude=120.17)
    assert incident["status"] == "reported"
    assert incident["unit_id"] == str(world.unit("a1").id)
    assert incident["reporter_name"] == "张伟"
    assert "reporter_phone" not in incident and "reporter_id_number" not in incident

    fetched = api.get(f"/api/v1/incidents/{incident['id']}", officer)
    assert fetched.status_code == 200
    assert fetched.get_json()["latitude"] == 30.25
    listed = api.get("/api/v1/incidents?status=reported&limit=200", officer).get_json()["items"]
    assert incident["id"] in [i["id"] for i in listed]


def test_offline_incident_resend_creates_nothing_and_conflicting_resend_is_refused(api, world, app):
    officer = world.user("a1.officer")
    client_id = str(uuid.uuid4())
    body = {
        "id": client_id,
        "occurred_at": "2026-05-01T08:00:00+08:00",
        "place": "滨江路2号",
        "category": "盗窃",
        "summary": "电动车被盗。",
    }
    first = api.post("/api/v1/incidents", officer, json=body)
    again = api.post("/api/v1/incidents", officer, json=body)
    changed = api.post("/api/v1/incidents", officer, json={**body, "summary": "别的内容"})
    assert (first.status_code, again.status_code, changed.status_code) == (201, 200, 409)
    assert again.get_json()["id"] == client_id
    assert changed.content_type == PROBLEM
    with app.app_context():
        assert db.session.get(Incident, uuid.UUID(client_id)).summary == "电动车被盗。"


def test_incident_validation_rejects_bad_and_unknown_fields(api, world):
    officer = world.user("a1.officer")
    cases = [
        {"place": "x", "category": "c", "summary": "s"},
        {"occurred_at": "2026-05-01T08:00:00", "place": "x", "category": "c", "summary": "s"},
        {
            "occurred_at": "2026-05-01T08:00:00Z",
            "place": "x",
            "category": "c",
            "summary": "s",
            "latitude": 91,
        },
        {
            "occurred_at": "2026-05-01T08:00:00Z",
            "place": "x",
            "category": "c",
            "summary": "s",
            "status": "accepted",
        },
        {
            "occurred_at": "2026-05-01T08:00:00Z",
            "place": "x",
            "category": "c",
            "summary": "s",
            "reporter": {"name": "a", "id_number": "../../etc"},
        },
    ]
    for body in cases:
        response = api.post("/api/v1/incidents", officer, json=body)
        assert response.status_code == 422, body
        problem = response.get_json()
        assert response.content_type == PROBLEM
        assert problem["status"] == 422 and problem["errors"]


def test_accepting_an_incident_makes_a_numbered_case_with_the_reporter(api, world):
    officer = world.user("a2.officer")
    first = api.case(officer)
    second = api.case(officer, "criminal")
    code = world.unit("a2").code
    first_seq = int(first["number"].rsplit("-", 1)[1])
    assert first["number"].startswith(f"{code}-")
    assert second["number"].endswith(f"-{first_seq + 1:06d}")
    assert first["status"] == "accepted" and first["is_open"]
    assert first["handler_id"] == str(officer.id)
    assert first["due_at"] is not None
    persons = api.get(f"/api/v1/cases/{first['id']}/persons", officer).get_json()
    assert [p["role"] for p in persons] == ["reporter"]
    assert persons[0]["phone"] == "138****5678"
    assert persons[0]["id_number"] == "1101**********1234"
    events = api.get(f"/api/v1/cases/{first['id']}/events", officer).get_json()
    assert [(e["type"], e["from_state"], e["to_state"]) for e in events] == [
        ("transition", "reported", "accepted")
    ]


def test_accept_is_idempotent_with_a_client_case_id_and_refused_twice_otherwise(api, world):
    officer = world.user("a1.officer")
    incident = api.incident(officer)
    case_id = str(uuid.uuid4())
    body = {"case_type": "administrative", "title": "离线受案", "case_id": case_id}
    url = f"/api/v1/incidents/{incident['id']}/accept"
    first = api.post(url, officer, json=body)
    resend = api.post(url, officer, json=body)
    other = api.post(url, officer, json={**body, "case_id": str(uuid.uuid4())})
    assert (first.status_code, resend.status_code, other.status_code) == (201, 200, 409)
    assert resend.get_json()["number"] == first.get_json()["number"]


def test_closing_an_incident_as_not_a_case(api, world):
    officer = world.user("a1.officer")
    incident = api.incident(officer)
    url = f"/api/v1/incidents/{incident['id']}/close"
    closed = api.post(url, officer, json={"reason": "纠纷已当场调解"})
    assert closed.status_code == 200
    assert closed.get_json()["status"] == "closed_not_case"
    assert api.post(url, officer, json={"reason": "again"}).status_code == 409
    accept = api.post(
        f"/api/v1/incidents/{incident['id']}/accept",
        officer,
        json={"case_type": "administrative", "title": "x"},
    )
    assert accept.status_code == 409


def test_case_etag_and_conditional_get(api, world):
    officer = world.user("a1.officer")
    case = api.case(officer)
    response = api.get(f"/api/v1/cases/{case['id']}", officer)
    etag = response.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"')
    cached = api.get(f"/api/v1/cases/{case['id']}", officer, headers={"If-None-Match": etag})
    assert cached.status_code == 304
    assert api.step(case["id"], officer, "start_investigation").status_code == 200
    fresh = api.get(f"/api/v1/cases/{case['id']}", officer, headers={"If-None-Match": etag})
    assert fresh.status_code == 200 and fresh.headers["ETag"] != etag


def test_case_list_filters(api, world, app):
    officer = world.user("b1.officer")
    admin_case = api.case(officer)
    criminal_case = api.case(officer, "criminal")
    api.step(admin_case["id"], officer, "start_investigation")
    with app.app_context():
        case = db.session.get(Case, uuid.UUID(criminal_case["id"]))
        case.due_at = case.created_at.replace(year=2000)
        db.session.commit()

    def ids(query: str) -> set[str]:
        response = api.get(f"/api/v1/cases?limit=200&{query}", officer)
        assert response.status_code == 200, response.get_json()
        return {c["id"] for c in response.get_json()["items"]}

    assert admin_case["id"] in ids("status=investigating")
    assert criminal_case["id"] not in ids("status=investigating")
    assert ids("status=investigating&status=accepted") >= {admin_case["id"], criminal_case["id"]}
    assert criminal_case["id"] in ids("case_type=criminal")
    assert admin_case["id"] not in ids("case_type=criminal")
    assert criminal_case["id"] in ids("overdue=true")
    assert admin_case["id"] not in ids("overdue=true")
    assert admin_case["id"] in ids("overdue=false")
    assert ids(f"handler_id={officer.id}") >= {admin_case["id"], criminal_case["id"]}
    assert ids(f"handler_id={uuid.uuid4()}") == set()
    assert ids(f"unit_id={world.unit('b1').id}") >= {admin_case["id"]}
    assert ids("open=true") >= {admin_case["id"], criminal_case["id"]}
    assert admin_case["id"] in ids(f"q={admin_case['number']}")
    assert ids("q=%25_%25") == set()


def test_case_list_keyset_pagination_visits_each_case_once(api, world):
    officer = world.user("a2.officer2")
    made = {api.case(officer)["id"] for _ in range(5)}
    seen: list[str] = []
    cursor = None
    while True:
        query = f"/api/v1/cases?handler_id={officer.id}&limit=2"
        response = api.get(query + (f"&cursor={cursor}" if cursor else ""), officer)
        body = response.get_json()
        assert len(body["items"]) <= 2
        seen += [c["id"] for c in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen))
    assert made <= set(seen)


def test_case_list_rejects_bad_paging(api, world):
    officer = world.user("a1.officer")
    for query in ("limit=0", "limit=201", "cursor=not-a-cursor", "open=maybe", "bogus=1"):
        response = api.get(f"/api/v1/cases?{query}", officer)
        assert response.status_code in (400, 422), query
        assert response.content_type == PROBLEM


def test_higher_units_see_station_cases_and_stations_do_not_see_each_other(api, world):
    case = api.case(world.user("a1.officer"))
    path = f"/api/v1/cases/{case['id']}"
    assert api.get(path, world.user("a.manager")).status_code == 200
    assert api.get(path, world.user("city.manager")).status_code == 200
    assert api.get(path, world.user("a2.officer")).status_code == 404
    assert api.get(path, world.user("b.manager")).status_code == 404
    assert api.get(path, world.user("a1.admin")).status_code == 403


def test_persons_are_masked_and_revealed_only_with_an_audited_reason(api, world, app):
    officer = world.user("a1.officer")
    case = api.case(officer)
    person_id = str(uuid.uuid4())
    body = {
        "id": person_id,
        "role": "suspect",
        "name": "赵强",
        "id_number": "330102198812241234",
        "phone": "13900001111",
        "address": "示范市东城区人民路88号",
    }
    url = f"/api/v1/cases/{case['id']}/persons"
    created = api.post(url, officer, json=body)
    assert created.status_code == 201
    shown = created.get_json()
    assert shown["masked"] is True
    assert shown["id_number"] == "3301**********1234"
    assert shown["phone"] == "139****1111"
    assert "88号" not in shown["address"]
    assert api.post(url, officer, json=body).status_code == 200
    assert api.post(url, officer, json={**body, "name": "孙磊"}).status_code == 409

    reveal = f"{url}/{person_id}/reveal"
    assert api.post(reveal, officer, json={}).status_code == 422
    assert (
        api.post(reveal, world.user("a1.manager"), json={"reason": "统计核对"}).status_code == 403
    )
    revealed = api.post(reveal, world.user("a1.legal"), json={"reason": "审核强制措施需要核实身份"})
    assert revealed.status_code == 200
    assert revealed.get_json()["id_number"] == "330102198812241234"
    assert revealed.get_json()["masked"] is False
    with app.app_context():
        from backend.audit.models import AuditEntry

        entry = db.session.scalars(
            db.select(AuditEntry).where(AuditEntry.request_id == revealed.headers["X-Request-Id"])
        ).one()
        assert entry.reason == "审核强制措施需要核实身份"
        assert entry.object_id == person_id
        assert db.session.get(CasePerson, uuid.UUID(person_id)).case_id == uuid.UUID(case["id"])


def test_persons_cannot_be_added_to_a_closed_case(api, world):
    officer = world.user("a1.officer")
    case = api.case(officer)
    response = api.step(
        case["id"],
        officer,
        "transfer",
        {"receiving_agency": "市场监管局", "reason": "不属公安管辖"},
    )
    approval = api.pending_approval(case["id"], world.user("a1.leader"))
    assert response.status_code == 202
    assert api.decide(approval["id"], world.user("a1.leader")).status_code == 200
    added = api.post(
        f"/api/v1/cases/{case['id']}/persons", officer, json={"role": "witness", "name": "李娜"}
    )
    assert added.status_code == 409
