"""The whole API against its own OpenAPI document, by property-based testing.

Schemathesis reads ``/api/openapi.json`` and, for every operation, sends
generated requests signed with real bearer tokens: valid and invalid data,
boundary values, missing parameters and methods the path does not have. Half
the valid ids it draws are swapped for those of seeded objects, so calls reach
real objects as well as missing ones. Each answer must be one the document
promises: a documented status code (``default`` does not count), its content
type, body schema and headers; never a 5xx; every error RFC 9457 problem
details; valid data accepted and invalid data refused.

The operations are called twice: by a user the operation is meant for
(``x-roles``), and by one it is not, whose refusals must be documented too.
What the fuzzing found to be a 500 is kept below as fixed examples.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import hypothesis.strategies as st
import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings
from schemathesis import APIOperation, BaseSchema, Case, CheckContext, Response
from schemathesis.core.failures import Failure

import support_identification as identification
from conftest import PASSWORD, Api, Org, build_org
from support_workflow import sign_notification_record

PROBLEM = "application/problem+json"
PROBLEM_TYPE = "urn:fieldcase:problem:"
NOTIFY = {
    "facts": "两人互殴",
    "reasons_and_basis": "治安管理处罚法第43条",
    "hearing_requested": False,
}
DECISION = {"penalty": "fine", "penalty_detail": "罚款500元"}

# Schemathesis' defaults, widened only where the API documents a refusal that
# no schema can foresee. Each widening says why.
ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "429"]
REFUSED_WITHOUT_HEADER = ["400", "401", "403", "406", "415", "422"]
REJECTED = ["400", "401", "403", "404", "405", "406", "409", "415", "422", "428", "429", "5xx"]
CONFIG = {
    "operations": [
        {
            # A step must name the case's current ETag (412 otherwise, 428 when
            # missing, RFC 6585), and the workflow decides which steps exist,
            # from which state, with which inputs (422).
            "include-name": "POST /api/v1/cases/{case_id}/transitions",
            "checks": {
                "positive_data_acceptance": {"expected-statuses": [*ACCEPTED, "412", "422"]},
                "missing_required_header": {"expected-statuses": [*REFUSED_WITHOUT_HEADER, "428"]},
            },
        },
        {
            # Returning a step to its handler needs a comment (422).
            "include-name": "POST /api/v1/approvals/{approval_id}/decision",
            "checks": {"positive_data_acceptance": {"expected-statuses": [*ACCEPTED, "422"]}},
        },
        {
            # A cursor is opaque: only a ``next_cursor`` the server gave is one (400).
            "include-name": [
                "GET /api/v1/incidents",
                "GET /api/v1/cases",
                "GET /api/v1/approvals",
                "GET /api/v1/warnings",
                "GET /api/v1/feed",
                "GET /api/v1/key-incidents",
                "GET /api/v1/inspections",
                "GET /api/v1/problems",
                "GET /api/v1/handling-area/entries",
            ],
            "checks": {"positive_data_acceptance": {"expected-statuses": [*ACCEPTED, "400"]}},
        },
        {
            # Which tier a unit may hold depends on its parent's tier; which kinds a
            # case type has and which person a kind is about are the templates', which
            # facts exist and what data each carries the rule pack's; a problem's
            # responsible officer and deadline, a periods' order and end (a week or month
            # not yet over) are checked against the data (422);
            # a custody event needs the fields of its kind, a disposal decision a
            # pending request (422).
            "include-name": [
                "POST /api/v1/units",
                "POST /api/v1/cases/{case_id}/documents",
                "POST /api/v1/evidence/{evidence_id}/custody",
                "POST /api/v1/evidence/{evidence_id}/disposal/decision",
                "POST /api/v1/cases/{case_id}/facts",
                "POST /api/v1/problems",
                "GET /api/v1/problems/report",
                "POST /api/v1/problems/{problem_id}/rectification",
                "POST /api/v1/problems/{problem_id}/review",
                "POST /api/v1/handling-area/entries",
                "POST /api/v1/handling-area/entries/{entry_id}/exit",
                "GET /api/v1/stats",
                "POST /api/v1/bulletins",
                "POST /api/v1/assessments",
            ],
            "checks": {"positive_data_acceptance": {"expected-statuses": [*ACCEPTED, "422"]}},
        },
        {
            # Remote sessions: a schedule's order and span, the sites a participant
            # or recording names, which roles a kind admits and who may be a user,
            # a lineup's single target and statutory minimum, a recording or
            # transcript of the session's own case, a choice of a member shown and
            # a device's signature over the identifier's signature (422).
            "include-name-regex": "^POST /api/v1/(sessions|participant/identification)",
            "checks": {"positive_data_acceptance": {"expected-statuses": [*ACCEPTED, "422"]}},
        },
        {
            # tus: Upload-Metadata rules no schema states, the size caps and the
            # chunk checksum (400, 413, 460), expiry (410) and the protocol
            # version header (412, also when it is missing).
            "include-path-regex": "^/api/v1/uploads",
            "checks": {
                "positive_data_acceptance": {
                    "expected-statuses": [*ACCEPTED, "400", "410", "412", "413", "460"]
                },
                "missing_required_header": {"expected-statuses": [*REFUSED_WITHOUT_HEADER, "412"]},
                "negative_data_rejection": {"expected-statuses": [*REJECTED, "412", "413"]},
            },
        },
    ]
}


@dataclass
class Contract:
    """A private organisation with seeded objects, and who calls which operation.

    The fuzzer files incidents, adds persons, creates units and users and
    changes what it reaches, so it works in an organisation of its own rather
    than the shared ``world``.
    """

    app: Flask
    org: Org
    path_ids: dict[str, str]
    body_ids: dict[str, str]
    tokens: dict[str, str] = field(default_factory=dict)
    participants: dict[str, str] = field(default_factory=dict)
    """Participant tokens of a running identification, by participant role."""

    def participant_token(self, roles: set[str], *, entitled: bool) -> str:
        """A participant whose role the operation admits, or one whose role it does not
        (a user's token where no such participant exists: refused as well)."""
        for role, token in self.participants.items():
            if (role in roles) == entitled:
                return token
        return self.token("a1.officer")

    def login(self, name: str) -> str:
        response = self.app.test_client().post(
            "/api/v1/auth/login",
            json={"username": self.org.user(name).username, "password": PASSWORD},
        )
        assert response.status_code == 200, response.get_json()
        return response.get_json()["access_token"]

    def token(self, name: str) -> str:
        if name not in self.tokens:
            self.tokens[name] = self.login(name)
        return self.tokens[name]

    def caller(self, operation: APIOperation, *, entitled: bool) -> str:
        """Someone the operation is meant for (``x-roles``), or someone it is not."""
        roles = set(operation.definition.raw.get("x-roles", []))
        if not roles:  # the administrator holds no role that reads case data
            return "a1.officer" if entitled else "a1.admin"
        staff = (
            ["a1.officer", "a1.legal", "a1.leader", "a.admin"]
            if entitled
            else ["a1.admin", "a1.officer"]
        )
        return next(name for name in staff if bool(roles & self.org.user(name).roles) == entitled)

    def real_path_parameters(self, operation: APIOperation) -> dict[str, str]:
        names = [parameter.name for parameter in operation.path_parameters]
        if not names or any(name not in self.path_ids for name in names):
            return {}
        return {name: self.path_ids[name] for name in names}


def seed(app: Flask, org: Org) -> Contract:
    """Real objects in station A1: an incident, a case with a person, a pending
    approval (its case's notification record signed, so that it can be approved)
    and a user; district A, where units can be created."""
    api = Api(app.test_client())
    officer = org.user("a1.officer")
    case_id = api.case(officer)["id"]
    person = api.post(
        f"/api/v1/cases/{case_id}/persons",
        officer,
        json={"role": "suspect", "name": "李四", "id_number": "110101199001011234"},
    )
    assert person.status_code == 201, person.get_json()
    waiting = api.case(officer)["id"]
    for action, payload, status in (
        ("start_investigation", None, 200),
        ("notify", NOTIFY, 200),
        ("submit_decision", DECISION, 202),
    ):
        response = api.step(waiting, officer, action, payload)
        assert response.status_code == status, response.get_json()
    sign_notification_record(api, org, officer, waiting)
    station = str(org.unit("a1").id)
    user = api.post(
        "/api/v1/users",
        org.user("a.admin"),
        json={
            "username": f"{org.user('a.admin').username}.target",
            "display_name": "改来改去",
            "password": PASSWORD,
            "unit_id": station,
            "roles": ["officer"],
        },
    )
    assert user.status_code == 201, user.get_json()
    path_ids = {
        "incident_id": api.incident(officer)["id"],
        "case_id": case_id,
        "person_id": person.get_json()["id"],
        "approval_id": api.pending_approval(waiting, org.user("a1.legal"))["id"],
        "unit_id": station,
        "user_id": user.get_json()["id"],
    }
    body_ids = {"parent_id": str(org.unit("a").id), "unit_id": station}
    contract = Contract(app, org, path_ids, body_ids)
    ident = identification.prepared(api, org, presentation="simultaneous")
    ident.setup.start()
    administrator = ident.setup.add("administrator", name="组织辨认人员", site="centre")
    for role, participant in (("identifier", ident.identifier), ("administrator", administrator)):
        contract.participants[role] = ident.setup.headers(participant["id"])["Authorization"][7:]
    return contract


@pytest.fixture(scope="module")
def contract(app: Flask) -> Contract:
    with app.app_context():
        org = build_org("k" + uuid.uuid4().hex[:6])
    return seed(app, org)


def load_schema(contract: Contract, *, entitled: bool) -> BaseSchema:
    # Refusals are what the second pass is about: random data is enough there.
    phases = {} if entitled else {"phases": {"coverage": {"enabled": False}}}
    schema = schemathesis.openapi.from_wsgi(
        "/api/openapi.json", contract.app, config=schemathesis.Config.from_dict(CONFIG | phases)
    )

    @schema.auth(refresh_interval=None)
    class BearerToken:
        def get(self, case: Case, context: Any) -> str:
            participant_roles = context.operation.definition.raw.get("x-participant-roles")
            if participant_roles:
                return contract.participant_token(set(participant_roles), entitled=entitled)
            name = contract.caller(context.operation, entitled=entitled)
            if context.operation.path == "/api/v1/auth/logout":
                return contract.login(name)  # signing out ends the session: a new one each time
            return contract.token(name)

        def set(self, case: Case, data: str, context: Any) -> None:
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}

    # Half the valid ids become ids of the seeded objects; invalid ones stay invalid.
    @schema.hook
    def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any]) -> Any:
        real = contract.real_path_parameters(context.operation)
        if not real or not all(map(_is_uuid, path_parameters.values())):
            return st.just(path_parameters)
        return st.sampled_from([path_parameters, real])

    @schema.hook
    def flatmap_body(context: Any, body: Any) -> Any:
        if not isinstance(body, dict):
            return st.just(body)
        real = {k: v for k, v in contract.body_ids.items() if k in body and _is_uuid(body[k])}
        return st.sampled_from([body, body | real]) if real else st.just(body)

    @schema.hook
    def filter_body(context: Any, body: Any) -> bool:
        """Keep to the range instants document as ``x-minimum``/``x-maximum``,
        which schemathesis does not read: a date in UTC."""
        for name in INSTANTS:
            try:
                datetime.fromisoformat(body[name]).astimezone(UTC)
            except OverflowError:
                return False
            except (TypeError, KeyError, ValueError):
                pass  # no date-time there, or not one: nothing to keep to
        return True

    return schema


@pytest.fixture(scope="module")
def entitled_schema(contract: Contract) -> BaseSchema:
    return load_schema(contract, entitled=True)


@pytest.fixture(scope="module")
def outsider_schema(contract: Contract) -> BaseSchema:
    return load_schema(contract, entitled=False)


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    """Schemathesis 4.32 renames subtests through ``Node._nodeid``, gone in pytest 9.2."""
    request.node._nodeid = request.node.nodeid


def _is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def status_code_documented(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """The operation lists the status code itself.

    Schemathesis' ``status_code_conformance`` accepts any code when an
    operation has a ``default`` response, and every operation here has one.
    """
    if case.method.upper() != case.operation.method.upper():
        return None  # a method the operation does not have: see ``unsupported_method``
    documented = case.operation.definition.raw["responses"]
    if str(response.status_code) not in documented:
        raise Failure(
            operation=case.operation.label,
            title="Undocumented status code",
            message=f"Received {response.status_code}; documented: {', '.join(documented)}",
        )
    return None


def errors_are_problem_details(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """Every error is RFC 9457 problem details naming its own status."""
    if response.status_code < 400 or case.method.upper() == "HEAD":
        return None  # a HEAD answer has no body, by HTTP's rules
    content_type = response.headers.get("content-type", [""])[0].partition(";")[0]
    body = response.json() if content_type == PROBLEM else None
    if not (
        isinstance(body, dict)
        and body.get("status") == response.status_code
        and str(body.get("type", "")).startswith(PROBLEM_TYPE)
    ):
        raise Failure(
            operation=case.operation.label,
            title="Error answer is not problem details",
            message=f"{response.status_code} {content_type}: {response.text[:300]}",
        )
    return None


CHECKS = [status_code_documented, errors_are_problem_details]
INSTANTS = ("occurred_at", "captured_at", "signed_at")


@schemathesis.serializer("application/offset+octet-stream")
def tus_chunk(ctx: Any, value: Any) -> bytes:
    """A tus chunk is raw bytes; generated values are sent as their text."""
    return value if isinstance(value, bytes) else str(value).encode()


RUN = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.filter_too_much],
}

entitled = schemathesis.pytest.from_fixture("entitled_schema")
outsider = schemathesis.pytest.from_fixture("outsider_schema")


@entitled.parametrize()
@settings(max_examples=20, **RUN)
def test_answers_to_entitled_users_are_documented(case: Case) -> None:
    case.call_and_validate(additional_checks=CHECKS)


@outsider.parametrize()
@settings(max_examples=5, **RUN)
def test_answers_to_other_users_are_documented(case: Case) -> None:
    case.call_and_validate(additional_checks=CHECKS)


# What the fuzzing found, kept as fixed examples: each of these was a 500.
INCIDENT = {
    "occurred_at": "2026-03-01T09:30:00+08:00",
    "place": "人民路1号",
    "category": "治安",
    "summary": "两人在夜市互殴。",
}
YEAR_ZERO = json.dumps(["0001-01-01T00:00:00+01:00", uuid.UUID(int=0).hex]).encode()
ODD_INPUT = {
    "NUL in text (PostgreSQL)": ("POST", "/api/v1/incidents", INCIDENT | {"place": "人\x00"}, 422),
    "NUL in a query (PostgreSQL)": ("GET", "/api/v1/cases?q=a%00b", None, 422),
    "NUL in a user name (PostgreSQL)": (
        "POST",
        "/api/v1/auth/login",
        {"username": "a\x00", "password": PASSWORD},
        422,
    ),
    "past 32 bits (PostgreSQL)": (
        "GET",
        "/api/v1/cases/{case_id}/events?after=2147483648",
        None,
        422,
    ),
    "before year 1 in UTC": (
        "POST",
        "/api/v1/incidents",
        INCIDENT | {"occurred_at": "0001-01-01T00:00:00+01:00"},
        422,
    ),
    "after year 9999 in UTC": (
        "POST",
        "/api/v1/incidents",
        INCIDENT | {"occurred_at": "9999-12-31T23:00:00-01:00"},
        422,
    ),
    "a cursor before year 1 in UTC": (
        "GET",
        "/api/v1/cases?cursor=" + base64.urlsafe_b64encode(YEAR_ZERO).decode(),
        None,
        400,
    ),
}


@pytest.mark.parametrize(("method", "path", "body", "status"), ODD_INPUT.values(), ids=ODD_INPUT)
def test_odd_input_is_refused_with_a_problem(
    contract: Contract, method: str, path: str, body: dict[str, Any] | None, status: int
) -> None:
    api, officer = Api(contract.app.test_client()), contract.org.user("a1.officer")
    response = api.request(method, path.format(**contract.path_ids), officer, json=body)
    assert response.status_code == status, response.get_json()
    assert response.content_type == PROBLEM


def test_nul_in_a_step_input_is_refused(contract: Contract) -> None:
    api, officer = Api(contract.app.test_client()), contract.org.user("a1.officer")
    case_id = api.case(officer)["id"]
    assert api.step(case_id, officer, "start_investigation").status_code == 200
    response = api.step(case_id, officer, "notify", NOTIFY | {"facts": "两人\x00互殴"})
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["errors"]["json"]["payload"]["facts"]
