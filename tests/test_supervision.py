"""The rules engine at work: incremental and sweep evaluation, de-duplication,
auto-resolution, escalation, and the warnings and feed endpoints.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from backend.cases.models import Case
from backend.common import utcnow
from backend.extensions import db
from backend.jobs import service as jobs
from backend.org.models import User
from backend.supervision import service
from backend.supervision.models import CaseWarning
from shared.enums import WarningStatus

from conftest import Api, Org, OrgUser
from support_supervision import F, local, new_case, open_warnings, record

MAR2 = "2026-03-02 10:20"
PROBLEM = "application/problem+json"


@pytest.fixture
def session(app):
    with app.app_context():
        yield db.session
        db.session.rollback()


SNAPSHOT = tuple(column for column in service.WARNING_COLUMNS if column != "id")


def snapshot(case_ids: list[uuid.UUID]) -> set[tuple[Any, ...]]:
    """Every field of the cases' unresolved warnings but the id."""
    columns = [getattr(CaseWarning, name) for name in SNAPSHOT]
    rows = db.session.execute(
        sa.select(*columns).where(
            CaseWarning.case_id.in_(case_ids), CaseWarning.status != WarningStatus.RESOLVED
        )
    )
    return {tuple(row) for row in rows}


def idle_since(case: Case, moment: str) -> None:
    """Make the case untouched since ``moment`` (local time, fractions of a second allowed)."""
    case.updated_at = local(moment)
    db.session.flush()


def many_cases(world: Org) -> list[uuid.UUID]:
    officer = world.user("a1.officer").id
    plans = [
        (
            "criminal",
            [
                F("detained", MAR2, {}, "p1"),
                F("interrogated", "2026-03-02 12:00", {"officers": 1}, "p1"),
            ],
        ),
        (
            "criminal",
            [F("detained", MAR2, {}, "p1"), F("delivered_to_jail", "2026-03-02 15:00", {}, "p1")],
        ),
        (
            "criminal",
            [F("arrested", "2025-12-31 10:00", {}, "p2"), F("bail", "2025-03-02 10:00", {}, "p3")],
        ),
        ("administrative", [F("accepted", "2026-03-02 10:00"), F("decided", "2026-03-10 10:00")]),
        ("administrative", [F("questioning_started", MAR2, {"detention_possible": True}, "p1")]),
        (
            "administrative",
            [
                F("property_seized", MAR2, {"officers": 1}, "i1"),
                F("evidence_listed", MAR2, {}, "e1"),
            ],
        ),
    ]
    ids = []
    for case_type, facts in plans:
        case = new_case(officer, case_type)
        record(case, officer, *facts)
        service.refresh_deadlines(case.id)
        ids.append(case.id)
    for moment in ("2026-01-20 09:00", "2026-01-20 09:00:00.25"):
        case = new_case(officer)
        idle_since(case, moment)
        ids.append(case.id)
    return ids


def test_sweep_and_incremental_evaluation_agree(session, world):
    ids = many_cases(world)
    for moment in ("2026-03-02 20:00", "2026-03-03 12:00", "2026-03-20 00:00"):
        now = local(moment)
        session.execute(sa.delete(CaseWarning).where(CaseWarning.case_id.in_(ids)))
        service.sweep(now)
        swept = snapshot(ids)
        session.execute(sa.delete(CaseWarning).where(CaseWarning.case_id.in_(ids)))
        for case_id in ids:
            service.evaluate_case(case_id, now)
        assert snapshot(ids) == swept
        assert swept
    rules = {w[0] for w in swept}
    assert {
        "detention_to_jail",
        "interrogation_two_investigators",
        "legal_review_required",
        "case_idle",
    } <= rules


def test_a_second_sweep_raises_and_resolves_nothing(session, world):
    many_cases(world)
    now = local("2026-03-03 12:00")
    raised, _ = service.sweep(now)
    assert raised
    assert service.sweep(now) == (0, 0)


def test_the_sweep_resolves_a_warning_whose_condition_cleared(session, world):
    officer = world.user("a1.officer").id
    case = new_case(officer, "criminal")
    record(case, officer, F("detained", MAR2, {}, "p1"))
    service.refresh_deadlines(case.id)
    rule = service.pack().rules["detention_to_jail"]
    assert service.apply_rule(rule, local("2026-03-03 12:00"))[0] >= 1
    (warning,) = open_warnings(case.id, "detention_to_jail")
    record(case, officer, F("delivered_to_jail", "2026-03-03 12:30", {}, "p1"))
    assert service.apply_rule(rule, local("2026-03-03 13:00")) == (0, 1)
    session.refresh(warning)
    assert (warning.status, warning.resolved_at) == (
        WarningStatus.RESOLVED,
        local("2026-03-03 13:00"),
    )
    assert warning.resolution_note == service.AUTO_NOTE


@pytest.mark.parametrize("moment", ["2026-01-20 09:00", "2026-01-20 09:00:00.000250"])
def test_the_idle_key_is_the_same_in_sql_and_python(session, world, moment):
    """The key is ``isoformat()`` of the last change in UTC, which leaves out a zero
    fraction of a second; the firing query computes it in SQL for both evaluations."""
    officer = world.user("a1.officer").id
    case = new_case(officer)
    idle_since(case, moment)
    now = local("2026-03-02 12:00")
    rule = service.pack().rules["case_idle"]
    (row,) = session.execute(service.firing_query(rule, now, case.id)).all()
    assert row.key == local(moment).isoformat()
    service.evaluate_case(case.id, now)
    (warning,) = open_warnings(case.id, "case_idle")
    assert warning.key == row.key
    service.sweep(now + timedelta(minutes=5))
    assert open_warnings(case.id, "case_idle") == [warning]
    session.refresh(warning)
    assert warning.status == WarningStatus.OPEN


def test_unchanged_deadlines_are_not_rewritten(session, world):
    officer = world.user("a1.officer").id
    case = new_case(officer, "criminal")
    record(case, officer, F("detained", MAR2, {}, "p1"))
    state = service.refresh_deadlines(case.id)
    assert state.case_type == "criminal"
    assert "detained" in state.kinds
    assert "detention_to_jail" in state.timed
    before = {(d.id, d.rule_id, d.due_at) for d in service.list_deadlines(case)}
    service.refresh_deadlines(case.id)
    assert {(d.id, d.rule_id, d.due_at) for d in service.list_deadlines(case)} == before
    record(case, officer, F("detained", "2026-03-03 10:20", {}, "p2"))
    service.refresh_deadlines(case.id)
    jail = [d for d in service.list_deadlines(case) if d.rule_id == "detention_to_jail"]
    assert {d.subject for d in jail} == {"p1", "p2"}


def test_one_open_warning_per_rule_case_and_deadline(session, world):
    officer = world.user("a1.officer").id
    case = new_case(officer, "criminal")
    record(case, officer, F("detained", MAR2, {}, "p1"), F("detained", MAR2, {}, "p2"))
    now = local("2026-03-04 00:00")
    service.evaluate_case(case.id, now)
    service.evaluate_case(case.id, now + timedelta(hours=1))
    service.sweep(now + timedelta(hours=2))
    jail = open_warnings(case.id, "detention_to_jail")
    assert len(jail) == 2
    assert len({w.key for w in jail}) == 2
    duplicate = {c.name: getattr(jail[0], c.name) for c in CaseWarning.__table__.columns}
    duplicate["id"] = uuid.uuid4()
    with pytest.raises(IntegrityError), session.begin_nested():
        session.execute(sa.insert(CaseWarning).values(duplicate))


def test_warnings_resolve_themselves_when_the_condition_clears(session, world):
    officer = world.user("a1.officer").id
    case = new_case(officer, "criminal")
    record(case, officer, F("detained", MAR2, {}, "p1"))
    service.evaluate_case(case.id, local("2026-03-03 12:00"))
    (warning,) = open_warnings(case.id, "detention_to_jail")
    record(case, officer, F("delivered_to_jail", "2026-03-03 12:30", {}, "p1"))
    service.evaluate_case(case.id, local("2026-03-03 13:00"))
    session.refresh(warning)
    assert warning.status == WarningStatus.RESOLVED
    assert warning.resolved_by is None
    assert warning.resolved_at == local("2026-03-03 13:00")
    assert not open_warnings(case.id, "detention_to_jail")


def test_the_sweep_resolves_warnings_of_closed_cases(session, world):
    officer = world.user("a1.officer").id
    case = new_case(officer, "criminal")
    record(case, officer, F("detained", MAR2, {}, "p1"))
    service.evaluate_case(case.id, local("2026-03-03 12:00"))
    assert open_warnings(case.id, "detention_to_jail")
    case.is_open = False
    session.flush()
    service.sweep(local("2026-03-03 13:00"))
    assert not open_warnings(case.id, "detention_to_jail")


def test_a_manually_resolved_warning_does_not_come_back(session, world):
    officer = world.user("a1.officer").id
    case = new_case(officer, "criminal")
    record(case, officer, F("detained", MAR2, {}, "p1"))
    service.evaluate_case(case.id, local("2026-03-03 12:00"))
    (warning,) = open_warnings(case.id, "detention_to_jail")
    service.resolve(session.get_one(User, officer), warning, "已送看守所，系统漏登")
    service.sweep(local("2026-03-03 13:00"))
    service.evaluate_case(case.id, local("2026-03-03 14:00"))
    assert not open_warnings(case.id, "detention_to_jail")


def test_a_law_version_not_in_force_does_not_fire(session, world):
    officer = world.user("a1.officer").id
    case = new_case(officer)
    record(case, officer, F("questioning_started", "2025-12-31 23:00", {}, "p1"))
    service.evaluate_case(case.id, local("2026-01-01 12:00"))
    rules = {w.rule_id for w in open_warnings(case.id)}
    assert "admin_questioning_time_za2012" in rules
    assert "admin_questioning_time_za2025" not in rules


def test_escalation_to_the_legal_officer_and_then_the_centre(session, world):
    officer = world.user("a1.officer").id
    case = new_case(officer)
    record(case, officer, F("onspot_penalty", MAR2))
    now = local("2026-03-03 12:00")
    service.evaluate_case(case.id, now)
    (warning,) = open_warnings(case.id, "onspot_penalty_filing")
    legal = session.get_one(User, world.user("a1.legal").id)
    centre = session.get_one(User, world.user("a.manager").id)

    def visible(user: User) -> bool:
        page = service.list_warnings(user, {"case_id": case.id}, None, 50)
        return warning.id in {w.id for w in page["items"]}

    assert not visible(legal)
    service.escalate(now + timedelta(hours=3, minutes=59))
    session.refresh(warning)
    assert warning.level == 0
    service.escalate(now + timedelta(hours=4))
    session.refresh(warning)
    assert (warning.level, warning.to_legal, warning.to_centre) == (1, True, False)
    assert visible(legal)
    assert not visible(centre)
    service.escalate(now + timedelta(hours=27))
    session.refresh(warning)
    assert warning.level == 1
    service.escalate(now + timedelta(hours=28))
    session.refresh(warning)
    assert (warning.level, warning.to_centre) == (2, True)
    assert visible(centre)


def test_an_acknowledged_warning_does_not_escalate(session, world):
    officer = world.user("a1.officer").id
    case = new_case(officer)
    record(case, officer, F("onspot_penalty", MAR2))
    now = local("2026-03-03 12:00")
    service.evaluate_case(case.id, now)
    (warning,) = open_warnings(case.id, "onspot_penalty_filing")
    service.acknowledge(session.get_one(User, officer), warning)
    service.escalate(now + timedelta(days=3))
    session.refresh(warning)
    assert (warning.status, warning.level) == (WarningStatus.ACKNOWLEDGED, 0)


def test_the_periodic_jobs_are_registered():
    assert jobs.JOBS["supervision.sweep"].every == timedelta(minutes=5)
    assert "supervision.escalate" in jobs.JOBS


# Through the API: the warning exists when the request that caused it returns.


def ago(**delta: Any) -> str:
    return (utcnow() - timedelta(**delta)).isoformat()


def post_fact(api: Api, case_id: str, user: OrgUser, **body: Any) -> Any:
    return api.post(f"/api/v1/cases/{case_id}/facts", user, json=body)


def warnings(api: Api, user: OrgUser, query: str = "") -> list[dict[str, Any]]:
    response = api.get(f"/api/v1/warnings?limit=200&{query}", user)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["items"]


def detained_case(api: Api, world: Org) -> tuple[str, dict[str, Any]]:
    officer = world.user("a1.officer")
    case_id = api.case(officer, "criminal")["id"]
    response = post_fact(
        api, case_id, officer, kind="detained", subject="p1", started_at=ago(hours=30)
    )
    assert response.status_code == 201, response.get_json()
    (warning,) = [
        w
        for w in warnings(api, officer, f"case_id={case_id}")
        if w["rule_id"] == "detention_to_jail"
    ]
    return case_id, warning


def test_a_recorded_fact_raises_its_warning_within_the_request(api: Api, world: Org):
    case_id, warning = detained_case(api, world)
    assert warning["status"] == "open"
    assert warning["kind"] == "alert"
    assert "看守所" in warning["message"]["zh"]
    assert warning["case_number"] in warning["message"]["en"]
    supervision = api.get(f"/api/v1/cases/{case_id}/supervision", world.user("a1.officer"))
    assert {f["kind"] for f in supervision.get_json()["facts"]} >= {"accepted", "detained"}
    assert "detention_to_jail" in {d["rule_id"] for d in supervision.get_json()["deadlines"]}
    response = post_fact(
        api,
        case_id,
        world.user("a1.officer"),
        kind="delivered_to_jail",
        subject="p1",
        started_at=ago(minutes=1),
    )
    assert response.status_code == 201
    assert (
        api.get(f"/api/v1/warnings/{warning['id']}", world.user("a1.officer")).get_json()["status"]
        == "resolved"
    )


def test_a_workflow_step_raises_warnings_within_the_request(api: Api, world: Org):
    officer = world.user("a1.officer")
    case_id = api.case(officer, "criminal")["id"]
    assert api.step(case_id, officer, "start_filing_review").status_code == 200
    assert api.step(case_id, officer, "file_case", {"charge": "盗窃罪"}).status_code == 202
    for approver in ("a1.legal", "a1.leader"):
        user = world.user(approver)
        assert api.decide(api.pending_approval(case_id, user)["id"], user).status_code == 200
    assert api.step(case_id, officer, "start_investigation").status_code == 200
    person = api.post(
        f"/api/v1/cases/{case_id}/persons", officer, json={"role": "suspect", "name": "李四"}
    ).get_json()["id"]
    payload = {"person_id": person, "starts_at": ago(hours=26)}
    assert api.step(case_id, officer, "detain", payload).status_code == 202
    for approver in ("a1.legal", "a1.leader"):
        user = world.user(approver)
        assert api.decide(api.pending_approval(case_id, user)["id"], user).status_code == 200
    rules = {w["rule_id"] for w in warnings(api, officer, f"case_id={case_id}")}
    assert {"detention_to_jail", "detention_family_notice", "detention_interrogation"} <= rules


def test_warning_listing_filters_and_scopes(api: Api, world: Org):
    _, warning = detained_case(api, world)
    officer = world.user("a1.officer")
    assert warning["id"] in {w["id"] for w in warnings(api, officer, "mine=true")}
    assert warning["id"] in {w["id"] for w in warnings(api, officer, "kind=alert&status=open")}
    assert warning["id"] not in {w["id"] for w in warnings(api, officer, "kind=quality")}
    assert warning["id"] in {w["id"] for w in warnings(api, world.user("a1.legal"))}
    assert warning["id"] in {w["id"] for w in warnings(api, world.user("a.legal"))}
    assert warning["id"] not in {w["id"] for w in warnings(api, world.user("a1.officer2"))}
    assert warning["id"] not in {w["id"] for w in warnings(api, world.user("a1.manager"))}
    assert api.get(f"/api/v1/warnings/{warning['id']}", world.user("a1.manager")).status_code == 200
    assert warning["id"] not in {w["id"] for w in warnings(api, world.user("b1.legal"))}
    bad = api.get("/api/v1/warnings?kind=nonsense", officer)
    assert bad.status_code == 422 and bad.content_type == PROBLEM


def test_acknowledge_and_resolve(api: Api, world: Org):
    _, warning = detained_case(api, world)
    officer = world.user("a1.officer")
    path = f"/api/v1/warnings/{warning['id']}"
    response = api.post(f"{path}/acknowledge", officer)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["status"] == "acknowledged"
    assert response.get_json()["acknowledged_by"] == str(officer.id)
    assert api.post(f"{path}/acknowledge", officer).status_code == 200
    missing_note = api.post(f"{path}/resolve", officer, json={})
    assert missing_note.status_code == 422 and missing_note.content_type == PROBLEM
    other = api.post(f"{path}/resolve", world.user("a1.officer2"), json={"note": "非承办人"})
    assert other.status_code == 403 and other.content_type == PROBLEM
    manager = api.post(f"{path}/resolve", world.user("a1.manager"), json={"note": "中心"})
    assert manager.status_code == 403
    response = api.post(f"{path}/resolve", world.user("a1.legal"), json={"note": "已核实"})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["status"], body["resolution_note"]) == ("resolved", "已核实")
    again = api.post(f"{path}/resolve", officer, json={"note": "再次"})
    assert again.status_code == 409 and again.content_type == PROBLEM
    assert api.post(f"{path}/acknowledge", officer).status_code == 409


def test_warnings_of_other_units_answer_404(api: Api, world: Org):
    case_id, warning = detained_case(api, world)
    path = f"/api/v1/warnings/{warning['id']}"
    stranger = world.user("b1.officer")
    assert api.get(path, stranger).status_code == 404
    assert api.post(f"{path}/acknowledge", stranger).status_code == 404
    assert api.post(f"{path}/resolve", stranger, json={"note": "x"}).status_code == 404
    assert api.get(f"/api/v1/cases/{case_id}/supervision", stranger).status_code == 404
    response = post_fact(api, case_id, stranger, kind="released", started_at=ago(minutes=1))
    assert response.status_code == 404
    assert api.get(path, world.user("a1.officer")).get_json()["status"] == "open"


def test_recording_a_fact_is_for_officers_and_validated(api: Api, world: Org):
    officer = world.user("a1.officer")
    case_id = api.case(officer, "criminal")["id"]
    leader = post_fact(
        api, case_id, world.user("a1.leader"), kind="released", started_at=ago(hours=1)
    )
    assert leader.status_code == 403
    for body in (
        {"kind": "Released!", "started_at": ago(hours=1)},
        {"kind": "released"},
        {"kind": "released", "started_at": "2026-03-02T10:00:00"},
        {"kind": "appraisal", "started_at": ago(hours=1), "ended_at": ago(hours=2)},
        {"kind": "released", "started_at": "9999-12-31T23:00:00+00:00"},
        {"kind": "interrogated", "started_at": ago(hours=1), "data": {"officers": 1.5}},
        {"kind": "interrogated", "started_at": ago(hours=1), "data": {"note": "a\u0000b"}},
        {"kind": "interrogated", "started_at": ago(hours=1), "data": {"nested": {"a": 1}}},
    ):
        response = api.post(f"/api/v1/cases/{case_id}/facts", officer, json=body)
        assert response.status_code == 422, (body, response.get_json())


def feed(api: Api, user: OrgUser, since: str | None = None) -> dict[str, Any]:
    path = "/api/v1/feed?limit=500" + (f"&since={since}" if since else "")
    response = api.get(path, user)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def drain(api: Api, user: OrgUser, since: str | None = None) -> tuple[list[dict[str, Any]], str]:
    items: list[dict[str, Any]] = []
    while True:
        body = feed(api, user, since)
        items += body["items"]
        since = body["next_cursor"]
        if not body["more"]:
            return items, since


def test_the_feed_brings_warnings_returned_steps_and_approvals(api: Api, world: Org):
    officer, legal = world.user("a1.officer"), world.user("a1.legal")
    _, cursor = drain(api, officer)
    _, legal_cursor = drain(api, legal)
    case_id, warning = detained_case(api, world)
    items, cursor = drain(api, officer, cursor)
    assert warning["id"].replace("-", "") in {i["id"] for i in items if i["type"] == "warning"}
    assert feed(api, officer, cursor)["items"] == []
    assert api.step(case_id, officer, "start_filing_review").status_code == 200
    assert api.step(case_id, officer, "file_case", {"charge": "盗窃罪"}).status_code == 202
    legal_items, legal_cursor = drain(api, legal, legal_cursor)
    approvals = [i for i in legal_items if i["type"] == "approval" and i["case_id"] == case_id]
    assert approvals and approvals[0]["approval"]["action"] == "file_case"
    approval = api.pending_approval(case_id, legal)
    assert api.decide(approval["id"], legal, "return", "补充材料").status_code == 200
    items, cursor = drain(api, officer, cursor)
    returned = [i for i in items if i["type"] == "step_returned" and i["case_id"] == case_id]
    assert returned and returned[0]["step"]["comment"] == "补充材料"
    api.post(f"/api/v1/warnings/{warning['id']}/resolve", officer, json={"note": "已处理"})
    items, cursor = drain(api, officer, cursor)
    changed = [i for i in items if i["type"] == "warning" and i["warning"]["status"] == "resolved"]
    assert changed
    assert feed(api, officer, cursor)["items"] == []
    assert api.get("/api/v1/feed?since=not-a-cursor", officer).status_code == 400


def test_the_feed_pages_without_losing_items(api: Api, world: Org):
    officer = world.user("a1.officer")
    _, cursor = drain(api, officer)
    case_id = api.case(officer, "criminal")["id"]
    for subject in ("p1", "p2", "p3"):
        post_fact(api, case_id, officer, kind="detained", subject=subject, started_at=ago(hours=30))
    seen: list[str] = []
    while True:
        response = api.get(f"/api/v1/feed?limit=2&since={cursor}", officer)
        body = response.get_json()
        seen += [i["id"] for i in body["items"]]
        cursor = body["next_cursor"]
        if not body["more"]:
            break
    assert len(seen) == len(set(seen))
    listed = {w["id"].replace("-", "") for w in warnings(api, officer, f"case_id={case_id}")}
    assert listed <= set(seen)
