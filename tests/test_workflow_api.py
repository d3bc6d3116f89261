"""The workflow endpoints: actions, transitions, approvals and decisions.

Every documented answer of each endpoint, through the HTTP API with real
tokens, plus full walks through both workflows.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient

from shared.workflow import workflow_for

from conftest import Api, Org, OrgUser
from support_workflow import sign_notification_record

PROBLEM = "application/problem+json"
NOTIFY = {
    "facts": "两人互殴",
    "reasons_and_basis": "治安管理处罚法第43条",
    "hearing_requested": False,
}
DECISION = {"penalty": "fine", "penalty_detail": "罚款500元"}
SERVED = {"served_at": "2026-03-05T10:00:00+08:00", "execution_note": "当场执行"}


# Helpers


def problem(response: Any, status: int, slug: str | None = None) -> dict[str, Any]:
    """Check an error answer is RFC 9457 problem details with ``status`` (and ``slug``)."""
    body = response.get_json(force=True)
    assert response.status_code == status, body
    assert response.content_type == PROBLEM
    assert body["status"] == status
    assert body["type"].startswith("urn:fieldcase:problem:")
    if slug:
        assert body["type"] == f"urn:fieldcase:problem:{slug}", body
    assert "Traceback" not in response.get_data(as_text=True)
    return body


def get_case(api: Api, case_id: str, user: OrgUser) -> dict[str, Any]:
    response = api.get(f"/api/v1/cases/{case_id}", user)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def events(api: Api, case_id: str, user: OrgUser) -> list[dict[str, Any]]:
    response = api.get(f"/api/v1/cases/{case_id}/events", user)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert [e["seq"] for e in body] == list(range(1, len(body) + 1))
    return body


def actions(api: Api, case_id: str, user: OrgUser) -> list[str]:
    response = api.get(f"/api/v1/cases/{case_id}/actions", user)
    assert response.status_code == 200, response.get_json()
    return sorted(a["name"] for a in response.get_json())


def step_ok(
    api: Api,
    case_id: str,
    user: OrgUser,
    action: str,
    payload: dict[str, Any] | None = None,
    comment: str | None = None,
    *,
    status: int = 200,
) -> dict[str, Any]:
    response = api.step(case_id, user, action, payload, comment)
    assert response.status_code == status, response.get_json()
    body = response.get_json()
    assert response.headers["ETag"] == api.etag(case_id, user)
    assert body["outcome"] == ("applied" if status == 200 else "pending")
    return body


def transition(
    api: Api,
    case_id: str,
    user: OrgUser,
    body: dict[str, Any],
    if_match: str | None = "current",
) -> Any:
    headers = {}
    if if_match == "current":
        headers["If-Match"] = api.etag(case_id, user)
    elif if_match is not None:
        headers["If-Match"] = if_match
    return api.post(f"/api/v1/cases/{case_id}/transitions", user, headers=headers, json=body)


def approve(api: Api, case_id: str, user: OrgUser, comment: str = "同意") -> dict[str, Any]:
    approval = api.pending_approval(case_id, user)
    response = api.decide(approval["id"], user, "approve", comment)
    assert response.status_code == 200, response.get_json()
    assert response.headers["ETag"] == api.etag(case_id, user)
    return response.get_json()


def all_approvals(api: Api, user: OrgUser, status: str | None = "pending") -> list[dict[str, Any]]:
    """Every approval the user's listing returns, following ``next_cursor``."""
    items: list[dict[str, Any]] = []
    query = f"status={status}&limit=200" if status else "limit=200"
    cursor = None
    while True:
        path = f"/api/v1/approvals?{query}" + (f"&cursor={cursor}" if cursor else "")
        response = api.get(path, user)
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        items += body["items"]
        cursor = body["next_cursor"]
        if not cursor:
            return items


def add_person(api: Api, case_id: str, officer: OrgUser, role: str = "suspect") -> str:
    response = api.post(
        f"/api/v1/cases/{case_id}/persons",
        officer,
        json={"role": role, "name": "李四", "id_number": "110101198505051234"},
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def unchanged(api: Api, case_id: str, user: OrgUser, before: tuple[str, int]) -> None:
    assert (api.etag(case_id, user), len(events(api, case_id, user))) == before


def snapshot(api: Api, case_id: str, user: OrgUser) -> tuple[str, int]:
    return api.etag(case_id, user), len(events(api, case_id, user))


def notified_case(api: Api, world: Org, officer: OrgUser) -> str:
    """An administrative case in ``notified``, its notification record signed."""
    case_id = api.case(officer, "administrative")["id"]
    step_ok(api, case_id, officer, "start_investigation")
    step_ok(api, case_id, officer, "notify", NOTIFY)
    sign_notification_record(api, world, officer, case_id)
    return case_id


def investigating_criminal_case(api: Api, world: Org, officer: OrgUser) -> str:
    case_id = api.case(officer, "criminal")["id"]
    step_ok(api, case_id, officer, "start_filing_review")
    step_ok(api, case_id, officer, "file_case", {"charge": "故意伤害罪"}, status=202)
    approve(api, case_id, world.user("a1.legal"))
    approve(api, case_id, world.user("a1.leader"))
    step_ok(api, case_id, officer, "start_investigation")
    return case_id


@pytest.fixture(scope="module")
def tokens() -> dict[uuid.UUID, str]:
    return {}


@pytest.fixture
def api(client: FlaskClient, tokens: dict[uuid.UUID, str]) -> Api:
    return Api(client, tokens)


# GET /cases/{id}/actions


def test_actions_depend_on_role_and_state(api: Api, world: Org) -> None:
    officer = world.user("a1.officer")
    case_id = api.case(officer, "administrative")["id"]
    response = api.get(f"/api/v1/cases/{case_id}/actions", officer)
    assert response.status_code == 200
    by_name = {a["name"]: a for a in response.get_json()}
    assert sorted(by_name) == ["revoke", "start_investigation", "transfer"]
    assert by_name["transfer"] == {
        "name": "transfer",
        "label": {"zh": "移送其他机关", "en": "Transfer to another agency"},
        "from": ["accepted", "investigating"],
        "to": "transferred",
        "roles": ["officer"],
        "approvals": [{"role": "leader", "state": None}],
        "inputs": [
            {
                "name": "receiving_agency",
                "type": "text",
                "required": True,
                "choices": [],
                "label": {"zh": "接收机关", "en": "Receiving agency"},
            },
            {
                "name": "reason",
                "type": "text",
                "required": True,
                "choices": [],
                "label": {"zh": "理由", "en": "Reason"},
            },
        ],
        "requires_signed": [],
        "missing_signed": [],
    }
    assert actions(api, case_id, world.user("a1.officer2")) == actions(api, case_id, officer)
    # Readers without the officer role may see the case but request nothing.
    for reader in ("a1.legal", "a1.leader", "a1.manager", "a.legal", "city.manager"):
        assert actions(api, case_id, world.user(reader)) == [], reader

    step_ok(api, case_id, officer, "start_investigation")
    assert actions(api, case_id, officer) == [
        "convert_to_criminal",
        "decide_no_punishment",
        "notify",
        "revoke",
        "transfer",
    ]
    step_ok(api, case_id, officer, "notify", NOTIFY)
    assert actions(api, case_id, officer) == [
        "convert_to_criminal",
        "decide_no_punishment",
        "revoke",
        "submit_decision",
    ]

    criminal_id = api.case(officer, "criminal")["id"]
    assert actions(api, criminal_id, officer) == ["start_filing_review"]


def test_actions_of_an_unseen_case_or_without_a_reader_role(api: Api, world: Org) -> None:
    case_id = api.case(world.user("a1.officer"), "administrative")["id"]
    for outsider in ("a2.officer", "b1.legal", "b.leader"):
        problem(api.get(f"/api/v1/cases/{case_id}/actions", world.user(outsider)), 404)
    problem(api.get(f"/api/v1/cases/{uuid.uuid4()}/actions", world.user("a1.officer")), 404)
    problem(api.get(f"/api/v1/cases/{case_id}/actions", world.user("a1.admin")), 403)
    problem(api.get(f"/api/v1/cases/{case_id}/actions"), 401)


def test_no_actions_while_a_step_is_pending(api: Api, world: Org) -> None:
    officer, legal = world.user("a1.officer"), world.user("a1.legal")
    case_id = notified_case(api, world, officer)
    step_ok(api, case_id, officer, "submit_decision", DECISION, status=202)
    assert actions(api, case_id, officer) == []
    assert actions(api, case_id, world.user("a1.officer2")) == []
    approve(api, case_id, legal)
    assert actions(api, case_id, officer) == []
    approval = api.pending_approval(case_id, world.user("a1.leader"))
    response = api.decide(approval["id"], world.user("a1.leader"), "return", "罚款数额不当")
    assert response.status_code == 200, response.get_json()
    assert get_case(api, case_id, officer)["status"] == "notified"
    assert "submit_decision" in actions(api, case_id, officer)

    # Also while the case keeps its state during the approval (no stage state).
    case_id = api.case(officer, "administrative")["id"]
    transfer = {"receiving_agency": "海关", "reason": "走私"}
    body = step_ok(api, case_id, officer, "transfer", transfer, status=202)
    assert body["case"]["status"] == "accepted"
    assert actions(api, case_id, officer) == []


# POST /cases/{id}/transitions


def test_a_step_without_approval_is_applied_at_once(api: Api, world: Org) -> None:
    officer = world.user("a1.officer")
    case_id = api.case(officer, "administrative")["id"]
    etag = api.etag(case_id, officer)
    response = api.post(
        f"/api/v1/cases/{case_id}/transitions",
        officer,
        headers={"If-Match": etag},
        json={"action": "start_investigation", "comment": "开始调查"},
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["outcome"] == "applied"
    assert body["request"] is None
    assert body["case"]["status"] == "investigating"
    assert body["case"]["pending_request_id"] is None
    assert response.headers["ETag"] != etag
    assert response.headers["ETag"] == api.etag(case_id, officer)
    assert get_case(api, case_id, officer)["status"] == "investigating"
    last = events(api, case_id, officer)[-1]
    assert last["seq"] == 2
    assert {k: last[k] for k in ("type", "action", "from_state", "to_state", "comment")} == {
        "type": "transition",
        "action": "start_investigation",
        "from_state": "accepted",
        "to_state": "investigating",
        "comment": "开始调查",
    }
    assert last["actor_id"] == str(officer.id)
    assert last["request_id"] is None

    # Another officer of the station may take the next step; payload is recorded.
    officer2 = world.user("a1.officer2")
    step_ok(api, case_id, officer2, "notify", NOTIFY)
    last = events(api, case_id, officer)[-1]
    assert (last["actor_id"], last["payload"]) == (str(officer2.id), NOTIFY)


def test_a_step_needing_approval_waits(api: Api, world: Org) -> None:
    officer = world.user("a1.officer")
    case_id = notified_case(api, world, officer)
    response = transition(
        api, case_id, officer, {"action": "submit_decision", "payload": DECISION, "comment": "请审"}
    )
    assert response.status_code == 202, response.get_json()
    body = response.get_json()
    assert body["outcome"] == "pending"
    assert response.headers["ETag"] == api.etag(case_id, officer)
    request = body["request"]
    assert {
        k: request[k]
        for k in ("action", "from_state", "to_state", "status", "stage", "payload", "comment")
    } == {
        "action": "submit_decision",
        "from_state": "notified",
        "to_state": "decided",
        "status": "pending",
        "stage": 0,
        "payload": DECISION,
        "comment": "请审",
    }
    assert request["requested_by"] == str(officer.id)
    assert request["case_id"] == case_id
    case = get_case(api, case_id, officer)
    assert case["status"] == "legal_review"
    assert case["pending_request_id"] == request["id"]
    last = events(api, case_id, officer)[-1]
    assert {k: last[k] for k in ("type", "action", "from_state", "to_state", "request_id")} == {
        "type": "step_requested",
        "action": "submit_decision",
        "from_state": "notified",
        "to_state": "legal_review",
        "request_id": request["id"],
    }
    approval = api.pending_approval(case_id, world.user("a1.legal"))
    assert (approval["stage"], approval["role"], approval["status"]) == (
        0,
        "legal_officer",
        "pending",
    )
    assert approval["request_id"] == request["id"]


def test_a_stage_without_its_own_state_keeps_the_case_where_it_was(api: Api, world: Org) -> None:
    officer = world.user("a1.officer")
    case_id = api.case(officer, "administrative")["id"]
    body = step_ok(
        api,
        case_id,
        officer,
        "transfer",
        {"receiving_agency": "市场监督管理局", "reason": "不属公安管辖"},
        status=202,
    )
    assert body["case"]["status"] == "accepted"
    assert body["case"]["pending_request_id"] == body["request"]["id"]
    result = approve(api, case_id, world.user("a1.leader"))
    assert result["outcome"] == "applied"
    case = get_case(api, case_id, officer)
    assert (case["status"], case["is_open"], case["due_at"]) == ("transferred", False, None)


def test_if_match_is_required_and_must_be_current(api: Api, world: Org) -> None:
    officer = world.user("a1.officer")
    case_id = api.case(officer, "administrative")["id"]
    body = {"action": "start_investigation"}
    before = snapshot(api, case_id, officer)

    problem(transition(api, case_id, officer, body, if_match=None), 428, "precondition-required")
    problem(transition(api, case_id, officer, body, if_match=""), 428)
    unchanged(api, case_id, officer, before)

    current = api.etag(case_id, officer)
    stale = current.replace(".", ".9", 1)
    for sent in (stale, '"garbage"', "*", current.strip('"')):
        failed = problem(
            transition(api, case_id, officer, body, if_match=sent), 412, "precondition-failed"
        )
        assert failed["current_etag"] == current
    unchanged(api, case_id, officer, before)

    # An ETag read before someone else's step is stale afterwards.
    step_ok(
        api,
        case_id,
        world.user("a1.officer2"),
        "transfer",
        {"receiving_agency": "税务局", "reason": "x"},
        status=202,
    )
    failed = problem(transition(api, case_id, officer, {"action": "revoke"}, if_match=current), 412)
    assert failed["current_etag"] == api.etag(case_id, officer) != current

    # A list that contains the current ETag is accepted.
    other = api.case(officer, "administrative")["id"]
    response = transition(api, other, officer, body, if_match=f'"old", {api.etag(other, officer)}')
    assert response.status_code == 200, response.get_json()


def test_action_not_allowed_in_this_state(api: Api, world: Org) -> None:
    officer = world.user("a1.officer")
    case_id = api.case(officer, "administrative")["id"]
    before = snapshot(api, case_id, officer)
    for action, payload in (("close", {}), ("notify", NOTIFY), ("submit_decision", DECISION)):
        failed = problem(
            transition(api, case_id, officer, {"action": action, "payload": payload}),
            409,
            "action-not-allowed",
        )
        assert action in failed["detail"]
    unchanged(api, case_id, officer, before)


def test_one_pending_step_per_case(api: Api, world: Org) -> None:
    officer = world.user("a1.officer")
    case_id = notified_case(api, world, officer)
    step_ok(api, case_id, officer, "submit_decision", DECISION, status=202)
    before = snapshot(api, case_id, officer)
    for action, payload in (
        ("submit_decision", DECISION),
        ("revoke", {"reason": "x"}),
        ("close", {}),  # not allowed anyway: the pending step is reported first
    ):
        problem(
            transition(
                api, case_id, world.user("a1.officer2"), {"action": action, "payload": payload}
            ),
            409,
            "step-pending",
        )
    unchanged(api, case_id, officer, before)
    assert (
        len([a for a in all_approvals(api, world.user("a1.legal")) if a["case_id"] == case_id]) == 1
    )


def test_unknown_actions(api: Api, world: Org) -> None:
    officer = world.user("a1.officer")
    case_id = api.case(officer, "administrative")["id"]
    before = snapshot(api, case_id, officer)
    # `accept` is taken only through /incidents/{id}/accept; criminal actions
    # are unknown to an administrative case.
    for action in ("fly", "accept", "file_case", "START_INVESTIGATION"):
        failed = problem(transition(api, case_id, officer, {"action": action}), 422)
        assert failed["errors"] == {"json": {"action": ["Unknown action."]}}
    unchanged(api, case_id, officer, before)


@pytest.mark.parametrize(
    ("payload", "errors"),
    [
        ({}, {"facts", "reasons_and_basis", "hearing_requested"}),
        ({**NOTIFY, "facts": None}, {"facts"}),
        ({**NOTIFY, "witness": "王五"}, {"witness"}),
        ({**NOTIFY, "hearing_requested": "false"}, {"hearing_requested"}),
        ({**NOTIFY, "facts": 42}, {"facts"}),
        ({**NOTIFY, "facts": "   "}, {"facts"}),
        ({**NOTIFY, "facts": "x" * 10_001}, {"facts"}),
    ],
)
def test_bad_payloads(api: Api, world: Org, payload: dict[str, Any], errors: set[str]) -> None:
    officer = world.user("a1.officer")
    case_id = api.case(officer, "administrative")["id"]
    step_ok(api, case_id, officer, "start_investigation")
    before = snapshot(api, case_id, officer)
    failed = problem(
        transition(api, case_id, officer, {"action": "notify", "payload": payload}), 422
    )
    assert set(failed["errors"]["json"]["payload"]) == errors
    unchanged(api, case_id, officer, before)


def test_bad_payloads_of_other_input_types(api: Api, world: Org) -> None:
    officer = world.user("a1.officer")
    case_id = notified_case(api, world, officer)
    cases_ = [
        ("submit_decision", {**DECISION, "penalty": "caning"}, "penalty"),
        ("submit_decision", {"penalty": "fine"}, "penalty_detail"),
    ]
    for action, payload, field in cases_:
        failed = problem(
            transition(api, case_id, officer, {"action": action, "payload": payload}), 422
        )
        assert list(failed["errors"]["json"]["payload"]) == [field]
    step_ok(api, case_id, officer, "submit_decision", DECISION, status=202)
    approve(api, case_id, world.user("a1.legal"))
    approve(api, case_id, world.user("a1.leader"))
    for served_at in ("2026-03-05T10:00:00", "2026-03-05", 1772676000, "soon"):
        failed = problem(
            transition(
                api, case_id, officer, {"action": "execute", "payload": {"served_at": served_at}}
            ),
            422,
        )
        assert list(failed["errors"]["json"]["payload"]) == ["served_at"]
    # Steps without inputs refuse any input.
    step_ok(api, case_id, officer, "execute", {"served_at": "2026-03-05T02:00:00Z"})
    failed = problem(
        transition(api, case_id, officer, {"action": "close", "payload": {"note": "x"}}), 422
    )
    assert failed["errors"]["json"]["payload"] == {"note": ["Unknown input."]}


def test_a_person_input_must_name_a_person_of_the_case(api: Api, world: Org) -> None:
    officer = world.user("a1.officer")
    case_id = investigating_criminal_case(api, world, officer)
    other_case = api.case(officer, "criminal")["id"]
    stranger = add_person(api, other_case, officer)
    before = snapshot(api, case_id, officer)
    starts = "2026-03-02T08:00:00+08:00"
    for person_id in (stranger, str(uuid.uuid4()), "not-a-uuid", "12345"):
        failed = problem(
            transition(
                api,
                case_id,
                officer,
                {"action": "detain", "payload": {"person_id": person_id, "starts_at": starts}},
            ),
            422,
        )
        assert failed["errors"]["json"]["payload"] == {
            "person_id": ["No such person in this case."]
        }, person_id
    failed = problem(
        transition(api, case_id, officer, {"action": "detain", "payload": {"person_id": 7}}), 422
    )
    assert set(failed["errors"]["json"]["payload"]) == {"person_id", "starts_at"}
    unchanged(api, case_id, officer, before)
    suspect = add_person(api, case_id, officer)
    step_ok(
        api, case_id, officer, "detain", {"person_id": suspect, "starts_at": starts}, status=202
    )


def test_only_officers_request_steps(api: Api, world: Org) -> None:
    officer = world.user("a1.officer")
    case_id = api.case(officer, "administrative")["id"]
    before = snapshot(api, case_id, officer)
    for name in ("a1.legal", "a1.leader", "a1.manager", "a1.admin", "a.leader", "city.legal"):
        user = world.user(name)
        response = api.post(
            f"/api/v1/cases/{case_id}/transitions",
            user,
            headers={"If-Match": before[0]},
            json={"action": "start_investigation"},
        )
        problem(response, 403, "forbidden")
    problem(
        api.post(
            f"/api/v1/cases/{case_id}/transitions",
            headers={"If-Match": before[0]},
            json={"action": "start_investigation"},
        ),
        401,
    )
    unchanged(api, case_id, officer, before)


def test_officers_of_other_units_do_not_see_the_case(api: Api, world: Org) -> None:
    officer = world.user("a1.officer")
    case_id = api.case(officer, "administrative")["id"]
    before = snapshot(api, case_id, officer)
    response = api.post(
        f"/api/v1/cases/{case_id}/transitions",
        world.user("a2.officer"),
        headers={"If-Match": before[0]},
        json={"action": "start_investigation"},
    )
    problem(response, 404)
    problem(transition(api, str(uuid.uuid4()), officer, {"action": "x"}, if_match='"x"'), 404)
    unchanged(api, case_id, officer, before)


@pytest.mark.parametrize(
    "body",
    [
        {"action": "start_investigation", "to_state": "closed"},
        {"action": "start_investigation", "status": "closed"},
        {"action": "start_investigation", "payload": None},
        {"action": "start_investigation", "payload": ["x"]},
        {"action": "start_investigation", "comment": 5},
        {"action": "start_investigation", "comment": "x" * 5001},
        {"action": ""},
        {"action": "x" * 65},
        {"payload": {}},
        {},
    ],
)
def test_the_transition_body_is_validated(api: Api, world: Org, body: dict[str, Any]) -> None:
    officer = world.user("a1.officer")
    case_id = api.case(officer, "administrative")["id"]
    before = snapshot(api, case_id, officer)
    failed = problem(transition(api, case_id, officer, body), 422)
    assert "json" in failed["errors"]
    unchanged(api, case_id, officer, before)


# Approvals: listing and reading

SUBTREE = {"city": {"city", "a", "b", "a1", "a2", "b1"}, "a": {"a", "a1", "a2"}, "b": {"b", "b1"}}
"""The units each upper unit of the test organisation sees (a station sees itself)."""


def pending_legal_review(api: Api, world: Org, officer: OrgUser) -> tuple[str, str]:
    case_id = notified_case(api, world, officer)
    body = step_ok(api, case_id, officer, "submit_decision", DECISION, status=202)
    return case_id, body["request"]["id"]


def test_pending_approvals_are_scoped_to_units_and_roles(api: Api, world: Org) -> None:
    cases = {
        station: pending_legal_review(api, world, world.user(f"{station}.officer"))[0]
        for station in ("a1", "a2", "b1")
    }
    expected = {
        "a1.legal": {"a1"},
        "a2.legal": {"a2"},
        "b1.legal": {"b1"},
        "a.legal": {"a1", "a2"},
        "b.legal": {"b1"},
        "city.legal": {"a1", "a2", "b1"},
        "a1.leader": set(),
        "a.leader": set(),
        "city.leader": set(),
    }
    for name, stations in expected.items():
        user = world.user(name)
        items = all_approvals(api, user)
        seen = {
            station
            for station, case_id in cases.items()
            if any(a["case_id"] == case_id for a in items)
        }
        assert seen == stations, name
        units = {world.unit(k).id for k in SUBTREE.get(name.split(".")[0], {name.split(".")[0]})}
        for item in items:
            assert item["status"] == "pending"
            assert item["role"] in user.roles
            assert uuid.UUID(item["unit_id"]) in units
            assert item["case"]["id"] == item["case_id"]
            assert item["request"]["id"] == item["request_id"]

    # After the legal stage, the leaders see the second stage.
    approve(api, cases["a1"], world.user("a.legal"))
    for name, visible in (
        ("a1.leader", True),
        ("a.leader", True),
        ("a2.leader", False),
        ("b.leader", False),
        ("city.leader", True),
    ):
        items = all_approvals(api, world.user(name))
        found = [a for a in items if a["case_id"] == cases["a1"]]
        assert len(found) == (1 if visible else 0), name
        if visible:
            assert (found[0]["stage"], found[0]["role"]) == (1, "leader")
    assert not [
        a for a in all_approvals(api, world.user("a1.legal")) if a["case_id"] == cases["a1"]
    ]
    decided = [
        a
        for a in all_approvals(api, world.user("a1.legal"), "approved")
        if a["case_id"] == cases["a1"]
    ]
    assert [(a["stage"], a["decided_by"]) for a in decided] == [(0, str(world.user("a.legal").id))]
    everything = [
        a for a in all_approvals(api, world.user("a1.legal"), None) if a["case_id"] == cases["a1"]
    ]
    assert len(everything) == 1


def test_approval_listing_is_for_legal_officers_and_leaders(api: Api, world: Org) -> None:
    for name in ("a1.officer", "a1.manager", "a1.admin", "city.manager"):
        problem(api.get("/api/v1/approvals?status=pending", world.user(name)), 403)
    problem(api.get("/api/v1/approvals?status=pending"), 401)
    legal = world.user("a1.legal")
    problem(api.get("/api/v1/approvals?status=maybe", legal), 422)
    problem(api.get("/api/v1/approvals?limit=0", legal), 422)
    problem(api.get("/api/v1/approvals?cursor=%21%21%21", legal), 400)


def test_reading_one_approval(api: Api, world: Org) -> None:
    officer = world.user("a1.officer")
    case_id, request_id = pending_legal_review(api, world, officer)
    approval = api.pending_approval(case_id, world.user("a1.legal"))
    path = f"/api/v1/approvals/{approval['id']}"
    for name in ("a1.legal", "a.legal", "city.legal", "a1.leader", "a.leader"):
        response = api.get(path, world.user(name))
        assert response.status_code == 200, (name, response.get_json())
        body = response.get_json()
        assert body["id"] == approval["id"]
        assert (body["stage"], body["role"], body["status"]) == (0, "legal_officer", "pending")
        assert body["request"]["id"] == request_id
        assert body["request"]["payload"] == DECISION
        assert body["case"]["id"] == case_id
        assert body["case"]["status"] == "legal_review"
    for name in ("a2.legal", "b.legal", "b1.leader"):
        problem(api.get(path, world.user(name)), 404)
    for name in ("a1.officer", "a1.manager", "a1.admin"):
        problem(api.get(path, world.user(name)), 403)
    problem(api.get(f"/api/v1/approvals/{uuid.uuid4()}", world.user("a1.legal")), 404)


# Decisions


def test_approve_and_then_apply(api: Api, world: Org) -> None:
    officer, legal, leader = (world.user(f"a1.{n}") for n in ("officer", "legal", "leader"))
    case_id, request_id = pending_legal_review(api, world, officer)
    first = api.pending_approval(case_id, legal)
    response = api.decide(first["id"], legal, "approve", "事实清楚")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["outcome"] == "pending"
    assert body["case"]["status"] == "leader_approval"
    assert body["request"]["stage"] == 1
    assert response.headers["ETag"] == api.etag(case_id, officer)
    decided = api.get(f"/api/v1/approvals/{first['id']}", legal).get_json()
    assert (decided["status"], decided["decided_by"], decided["comment"]) == (
        "approved",
        str(legal.id),
        "事实清楚",
    )
    assert decided["decided_at"]

    second = api.pending_approval(case_id, leader)
    assert (second["stage"], second["role"], second["request_id"]) == (1, "leader", request_id)
    response = api.decide(second["id"], leader, "approve", None)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["outcome"] == "applied"
    assert body["request"]["status"] == "applied"
    case = get_case(api, case_id, officer)
    assert (case["status"], case["pending_request_id"], case["is_open"]) == ("decided", None, True)
    due = datetime.fromisoformat(case["due_at"])
    assert timedelta(hours=47) < due - datetime.now(UTC) <= timedelta(hours=48)

    history = events(api, case_id, officer)[-4:]
    assert [(e["type"], e["actor_id"]) for e in history] == [
        ("step_requested", str(officer.id)),
        ("step_approved", str(legal.id)),
        ("step_approved", str(leader.id)),
        ("transition", str(leader.id)),
    ]
    assert all(e["request_id"] == request_id for e in history)
    assert [e["payload"].get("stage") for e in history[1:3]] == [0, 1]
    assert [e["payload"].get("role") for e in history[1:3]] == ["legal_officer", "leader"]
    assert [e["payload"].get("approval_id") for e in history[1:3]] == [first["id"], second["id"]]
    assert history[1]["comment"] == "事实清楚"
    assert {k: history[3][k] for k in ("action", "from_state", "to_state", "payload")} == {
        "action": "submit_decision",
        "from_state": "notified",
        "to_state": "decided",
        "payload": DECISION,
    }


def test_return_sends_the_case_back_with_the_comment(api: Api, world: Org) -> None:
    officer, legal, leader = (world.user(f"a1.{n}") for n in ("officer", "legal", "leader"))
    case_id, request_id = pending_legal_review(api, world, officer)
    approval = api.pending_approval(case_id, legal)
    before = snapshot(api, case_id, officer)
    for comment in (None, "", "   "):
        failed = problem(api.decide(approval["id"], legal, "return", comment), 422)
        assert failed["errors"] == {"json": {"comment": ["Required when returning."]}}
    unchanged(api, case_id, officer, before)
    assert get_case(api, case_id, officer)["status"] == "legal_review"

    response = api.decide(approval["id"], legal, "return", "请补充证人证言")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["outcome"] == "returned"
    assert body["request"]["status"] == "returned"
    assert response.headers["ETag"] == api.etag(case_id, officer)
    case = get_case(api, case_id, officer)
    assert (case["status"], case["pending_request_id"]) == ("notified", None)
    last = events(api, case_id, officer)[-1]
    assert {k: last[k] for k in ("type", "action", "from_state", "to_state", "comment")} == {
        "type": "step_returned",
        "action": "submit_decision",
        "from_state": "notified",
        "to_state": "notified",
        "comment": "请补充证人证言",
    }
    assert (last["actor_id"], last["request_id"]) == (str(legal.id), request_id)
    assert last["payload"]["stage"] == 0
    returned = api.get(f"/api/v1/approvals/{approval['id']}", legal).get_json()
    assert (returned["status"], returned["comment"]) == ("returned", "请补充证人证言")
    assert not [a for a in all_approvals(api, leader) if a["case_id"] == case_id]

    # The handler may ask again; a leader's return after the legal approval also
    # goes back to the state the step was requested from.
    step_ok(
        api, case_id, officer, "submit_decision", {**DECISION, "penalty": "warning"}, status=202
    )
    approve(api, case_id, legal)
    second = api.pending_approval(case_id, leader)
    response = api.decide(second["id"], leader, "return", "改为警告以外的处罚")
    assert response.status_code == 200, response.get_json()
    case = get_case(api, case_id, officer)
    assert (case["status"], case["pending_request_id"]) == ("notified", None)
    assert [e["type"] for e in events(api, case_id, officer)[-4:]] == [
        "step_returned",
        "step_requested",
        "step_approved",
        "step_returned",
    ]


def test_decisions_by_the_wrong_role(api: Api, world: Org) -> None:
    officer = world.user("a1.officer")
    case_id, _ = pending_legal_review(api, world, officer)
    approval = api.pending_approval(case_id, world.user("a1.legal"))
    before = snapshot(api, case_id, officer)
    for name, status in (
        ("a1.leader", 403),
        ("a.leader", 403),
        ("a1.officer", 403),
        ("a1.officer2", 403),
        ("a1.manager", 403),
        ("a1.admin", 403),
        ("a2.legal", 404),
        ("b.legal", 404),
    ):
        for decision in ("approve", "return"):
            problem(api.decide(approval["id"], world.user(name), decision, "x"), status)
    unchanged(api, case_id, officer, before)
    approve(api, case_id, world.user("a1.legal"))
    leader_stage = api.pending_approval(case_id, world.user("a1.leader"))
    for name in ("a1.legal", "a.legal", "city.legal"):
        problem(api.decide(leader_stage["id"], world.user(name), "approve", "x"), 403)
    problem(api.decide(str(uuid.uuid4()), world.user("a1.leader")), 404)


def test_no_one_decides_their_own_request(api: Api, world: Org, multi_role_user: OrgUser) -> None:
    case_id = notified_case(api, world, world.user("a1.officer"))
    step_ok(api, case_id, multi_role_user, "submit_decision", DECISION, status=202)
    approval = api.pending_approval(case_id, multi_role_user)
    before = snapshot(api, case_id, multi_role_user)
    failed = problem(api.decide(approval["id"], multi_role_user, "approve"), 403)
    assert "requested" in failed["detail"]
    problem(api.decide(approval["id"], multi_role_user, "return", "撤回"), 403)
    unchanged(api, case_id, multi_role_user, before)
    approve(api, case_id, world.user("a1.legal"))
    problem(
        api.decide(
            api.pending_approval(case_id, multi_role_user)["id"], multi_role_user, "approve"
        ),
        403,
    )
    assert approve(api, case_id, world.user("a1.leader"))["outcome"] == "applied"

    # The same person may decide on someone else's request, at any of its stages.
    other = notified_case(api, world, world.user("a1.officer"))
    step_ok(api, other, world.user("a1.officer"), "submit_decision", DECISION, status=202)
    approve(api, other, multi_role_user)
    assert approve(api, other, multi_role_user)["outcome"] == "applied"
    assert get_case(api, other, multi_role_user)["status"] == "decided"


def test_each_approval_is_decided_once(api: Api, world: Org) -> None:
    officer, legal, leader = (world.user(f"a1.{n}") for n in ("officer", "legal", "leader"))
    case_id, _ = pending_legal_review(api, world, officer)
    first = api.pending_approval(case_id, legal)
    approve(api, case_id, legal)
    before = snapshot(api, case_id, officer)
    for user, decision in (
        (legal, "approve"),
        (legal, "return"),
        (world.user("a.legal"), "approve"),
    ):
        problem(api.decide(first["id"], user, decision, "再次"), 409, "approval-decided")
    unchanged(api, case_id, officer, before)
    stored = api.get(f"/api/v1/approvals/{first['id']}", legal).get_json()
    assert (stored["status"], stored["decided_by"]) == ("approved", str(legal.id))

    second = api.pending_approval(case_id, leader)
    response = api.decide(second["id"], leader, "return", "证据不足")
    assert response.status_code == 200
    before = snapshot(api, case_id, officer)
    problem(api.decide(second["id"], leader, "approve"), 409, "approval-decided")
    problem(api.decide(first["id"], legal, "approve"), 409, "approval-decided")
    unchanged(api, case_id, officer, before)
    assert get_case(api, case_id, officer)["status"] == "notified"


@pytest.mark.parametrize(
    "body",
    [
        {"decision": "maybe"},
        {"decision": "approve", "approved": True},
        {"decision": "approve", "comment": "x" * 5001},
        {"comment": "同意"},
    ],
)
def test_the_decision_body_is_validated(api: Api, world: Org, body: dict[str, Any]) -> None:
    officer, legal = world.user("a1.officer"), world.user("a1.legal")
    case_id, _ = pending_legal_review(api, world, officer)
    approval = api.pending_approval(case_id, legal)
    before = snapshot(api, case_id, officer)
    response = api.post(f"/api/v1/approvals/{approval['id']}/decision", legal, json=body)
    problem(response, 422)
    unchanged(api, case_id, officer, before)


def test_district_and_city_legal_officers_decide_for_stations(api: Api, world: Org) -> None:
    officer = world.user("a2.officer")
    case_id, _ = pending_legal_review(api, world, officer)
    approve(api, case_id, world.user("a.legal"))
    assert approve(api, case_id, world.user("a.leader"))["outcome"] == "applied"
    assert get_case(api, case_id, officer)["status"] == "decided"
    decided_by = [
        e["actor_id"] for e in events(api, case_id, officer) if e["type"] == "step_approved"
    ]
    assert decided_by == [str(world.user("a.legal").id), str(world.user("a.leader").id)]

    case_id, _ = pending_legal_review(api, world, world.user("b1.officer"))
    approve(api, case_id, world.user("city.legal"))
    approve(api, case_id, world.user("b1.leader"))
    assert get_case(api, case_id, world.user("b1.officer"))["status"] == "decided"


# Walk-throughs and terminal states


def assert_final(api: Api, case_id: str, officer: OrgUser) -> None:
    case = get_case(api, case_id, officer)
    assert case["is_open"] is False
    assert case["due_at"] is None
    assert actions(api, case_id, officer) == []
    before = snapshot(api, case_id, officer)
    workflow = workflow_for(case["case_type"])
    for name in workflow.actions:
        if name == "accept":
            continue
        problem(transition(api, case_id, officer, {"action": name}), 409, "case-closed")
    response = api.post(
        f"/api/v1/cases/{case_id}/persons", officer, json={"role": "witness", "name": "赵六"}
    )
    problem(response, 409)
    unchanged(api, case_id, officer, before)


def test_administrative_walk_through(api: Api, world: Org) -> None:
    officer, officer2 = world.user("a1.officer"), world.user("a1.officer2")
    legal, leader = world.user("a1.legal"), world.user("a1.leader")
    case = api.case(officer, "administrative")
    case_id = case["id"]
    assert case["status"] == "accepted"
    due = datetime.fromisoformat(case["due_at"])
    assert timedelta(hours=719) < due - datetime.now(UTC) <= timedelta(hours=720)

    seen = ["accepted"]
    steps: list[tuple[str, dict[str, Any], OrgUser]] = [
        ("start_investigation", {}, officer),
        ("notify", NOTIFY, officer2),
    ]
    for action, payload, user in steps:
        body = step_ok(api, case_id, user, action, payload)
        seen.append(body["case"]["status"])
    assert get_case(api, case_id, officer)["due_at"] == case["due_at"]
    sign_notification_record(api, world, officer, case_id)

    body = step_ok(api, case_id, officer, "submit_decision", DECISION, "请审批", status=202)
    seen.append(body["case"]["status"])
    seen.append(approve(api, case_id, legal)["case"]["status"])
    seen.append(approve(api, case_id, leader)["case"]["status"])
    seen.append(step_ok(api, case_id, officer, "execute", SERVED)["case"]["status"])
    assert get_case(api, case_id, officer)["due_at"] is None
    seen.append(step_ok(api, case_id, officer, "close")["case"]["status"])
    assert seen == [
        "accepted",
        "investigating",
        "notified",
        "legal_review",
        "leader_approval",
        "decided",
        "executed",
        "closed",
    ]

    history = events(api, case_id, officer)
    summary = [
        (e["type"], e["action"], e["from_state"], e["to_state"], e["actor_id"]) for e in history
    ]
    o, o2, lg, ld = (str(u.id) for u in (officer, officer2, legal, leader))
    assert summary == [
        ("transition", "accept", "reported", "accepted", o),
        ("transition", "start_investigation", "accepted", "investigating", o),
        ("transition", "notify", "investigating", "notified", o2),
        ("person_added", None, None, None, o),
        ("document_created", None, None, None, o),
        ("document_finalized", None, None, None, o),
        ("document_signed", None, None, None, o),
        ("step_requested", "submit_decision", "notified", "legal_review", o),
        ("step_approved", "submit_decision", None, None, lg),
        ("step_approved", "submit_decision", None, None, ld),
        ("transition", "submit_decision", "notified", "decided", ld),
        ("transition", "execute", "decided", "executed", o),
        ("transition", "close", "executed", "closed", o),
    ]
    assert history[7]["comment"] == history[10]["comment"] == "请审批"
    assert history[11]["payload"] == SERVED
    assert_final(api, case_id, officer)


def test_criminal_walk_through(api: Api, world: Org) -> None:
    officer, legal, leader = (world.user(f"a1.{n}") for n in ("officer", "legal", "leader"))
    case = api.case(officer, "criminal")
    case_id = case["id"]
    due = datetime.fromisoformat(case["due_at"])
    assert timedelta(hours=71) < due - datetime.now(UTC) <= timedelta(hours=72)
    suspect = add_person(api, case_id, officer)

    step_ok(api, case_id, officer, "start_filing_review")
    body = step_ok(api, case_id, officer, "file_case", {"charge": "故意伤害罪"}, status=202)
    assert body["case"]["status"] == "filing_review"  # stages without a state of their own
    assert approve(api, case_id, legal)["case"]["status"] == "filing_review"
    assert approve(api, case_id, leader)["case"]["status"] == "filed"
    assert get_case(api, case_id, officer)["due_at"] is None
    step_ok(api, case_id, officer, "start_investigation")

    detention = {"person_id": suspect, "starts_at": "2026-03-02T08:00:00+08:00"}
    body = step_ok(api, case_id, officer, "detain", detention, "提请拘留", status=202)
    assert body["case"]["status"] == "investigating"
    assert actions(api, case_id, officer) == []
    approve(api, case_id, legal)
    result = approve(api, case_id, leader)
    assert (result["outcome"], result["case"]["status"]) == ("applied", "investigating")

    step_ok(api, case_id, officer, "conclude_investigation", {"summary": "事实清楚，证据确实充分"})
    body = step_ok(
        api,
        case_id,
        officer,
        "transfer_for_prosecution",
        {"procuratorate": "区人民检察院"},
        status=202,
    )
    assert body["case"]["status"] == "legal_review"
    assert approve(api, case_id, legal)["case"]["status"] == "leader_approval"
    assert approve(api, case_id, leader)["case"]["status"] == "transferred_for_prosecution"
    assert get_case(api, case_id, officer)["is_open"] is True
    step_ok(api, case_id, officer, "close")

    o, lg, ld = (str(u.id) for u in (officer, legal, leader))
    history = events(api, case_id, officer)
    summary = [
        (e["type"], e["action"], e["from_state"], e["to_state"], e["actor_id"]) for e in history
    ]
    assert summary == [
        ("transition", "accept", "reported", "accepted", o),
        ("person_added", None, None, None, o),
        ("transition", "start_filing_review", "accepted", "filing_review", o),
        ("step_requested", "file_case", "filing_review", "filing_review", o),
        ("step_approved", "file_case", None, None, lg),
        ("step_approved", "file_case", None, None, ld),
        ("transition", "file_case", "filing_review", "filed", ld),
        ("transition", "start_investigation", "filed", "investigating", o),
        ("step_requested", "detain", "investigating", "investigating", o),
        ("step_approved", "detain", None, None, lg),
        ("step_approved", "detain", None, None, ld),
        ("transition", "detain", "investigating", "investigating", ld),
        ("transition", "conclude_investigation", "investigating", "investigation_concluded", o),
        (
            "step_requested",
            "transfer_for_prosecution",
            "investigation_concluded",
            "legal_review",
            o,
        ),
        ("step_approved", "transfer_for_prosecution", None, None, lg),
        ("step_approved", "transfer_for_prosecution", None, None, ld),
        (
            "transition",
            "transfer_for_prosecution",
            "investigation_concluded",
            "transferred_for_prosecution",
            ld,
        ),
        ("transition", "close", "transferred_for_prosecution", "closed", o),
    ]
    assert history[1]["payload"] == {"person_id": suspect, "role": "suspect"}
    assert history[11]["payload"] == detention
    assert history[8]["comment"] == history[11]["comment"] == "提请拘留"
    assert_final(api, case_id, officer)


@pytest.mark.parametrize(
    ("case_type", "path", "end"),
    [
        ("administrative", [("revoke", {"reason": "不构成违法"}, 2)], "revoked"),
        (
            "administrative",
            [("start_investigation", {}, 0), ("decide_no_punishment", {"reason": "情节轻微"}, 2)],
            "no_punishment",
        ),
        (
            "administrative",
            [("start_investigation", {}, 0), ("convert_to_criminal", {"reason": "涉嫌犯罪"}, 2)],
            "converted_to_criminal",
        ),
        (
            "criminal",
            [
                ("start_filing_review", {}, 0),
                (
                    "refuse_filing",
                    {
                        "reason": "不构成犯罪",
                        "complainant_notified_at": "2026-03-03T09:00:00+08:00",
                    },
                    2,
                ),
            ],
            "not_filed",
        ),
    ],
)
def test_other_ends_are_final(
    api: Api, world: Org, case_type: str, path: list[tuple[str, dict[str, Any], int]], end: str
) -> None:
    officer = world.user("a1.officer")
    case_id = api.case(officer, case_type)["id"]
    for action, payload, stages in path:
        step_ok(api, case_id, officer, action, payload, status=202 if stages else 200)
        deciders = [world.user("a1.legal"), world.user("a1.leader")][-stages:] if stages else []
        for user in deciders:
            approve(api, case_id, user)
    assert get_case(api, case_id, officer)["status"] == end
    assert_final(api, case_id, officer)


def test_terminal_criminal_ends_after_investigation(api: Api, world: Org) -> None:
    officer = world.user("a1.officer")
    for action, end in (("terminate_investigation", "terminated"), ("revoke_case", "revoked")):
        case_id = investigating_criminal_case(api, world, officer)
        body = step_ok(api, case_id, officer, action, {"reason": "嫌疑人死亡"}, status=202)
        assert body["case"]["status"] == "legal_review"
        approve(api, case_id, world.user("a1.legal"))
        approve(api, case_id, world.user("a1.leader"))
        assert get_case(api, case_id, officer)["status"] == end
        assert_final(api, case_id, officer)
