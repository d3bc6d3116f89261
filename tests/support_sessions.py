"""Factories for remote-session tests: a criminal case with two presiding officers, a
session of each kind, participants, one-time codes and participant tokens.

Used by tests/test_sessions.py, tests/test_identification.py and the witness-mode
tests. Join requests come from a fresh client address each, so that the join rate
limit (per address and minute) counts only what a test means it to.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from conftest import Api, Org, OrgUser
from support_documents import SUSPECT, add_person

SITES = [
    {"key": "centre", "name": "执法办案中心", "kind": "case_handling_centre"},
    {"key": "jail", "name": "市看守所", "kind": "detention_house"},
]


def client_address() -> str:
    """A made-up client address (TEST-NET-2 and -3 are too small for many runs; 10/8)."""
    return f"10.{secrets.randbelow(256)}.{secrets.randbelow(256)}.{1 + secrets.randbelow(254)}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def schedule(hours: float = 3) -> tuple[str, str]:
    """A start a few minutes ago and an end ``hours`` from now (tokens live past the end)."""
    now = datetime.now(UTC).replace(microsecond=0)
    return (now - timedelta(minutes=5)).isoformat(), (now + timedelta(hours=hours)).isoformat()


def join(api: Api, code: str, address: str | None = None) -> Any:
    """POST /participant/join from ``address`` (a fresh one unless given)."""
    return api.client.post(
        "/api/v1/participant/join",
        json={"code": code},
        environ_base={"REMOTE_ADDR": address or client_address()},
    )


@dataclass
class SessionSetup:
    """A scheduled session with its two presiding officers (a1 officer and officer2)."""

    api: Api
    world: Org
    case: dict[str, Any]
    session: dict[str, Any]
    officer: OrgUser
    second: OrgUser
    tokens: dict[str, str] = field(default_factory=dict)
    """Participant tokens by participant id."""

    @property
    def id(self) -> str:
        return self.session["id"]

    def url(self, suffix: str = "") -> str:
        return f"/api/v1/sessions/{self.id}{suffix}"

    def get(self, user: OrgUser | None = None) -> dict[str, Any]:
        response = self.api.get(self.url(), user or self.officer)
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    def post(self, suffix: str, user: OrgUser | None = None, **kw: Any) -> Any:
        return self.api.post(self.url(suffix), user or self.officer, **kw)

    def add(self, role: str, **fields: Any) -> dict[str, Any]:
        """Add a participant; 201 expected."""
        body = {"role": role, **fields}
        if "user_id" not in body and "name" not in body and "person_id" not in body:
            body["name"] = {"identifier": "王芳", "witness": "赵敏", "lawyer": "陈律师"}.get(
                role, f"{role}参与人"
            )
        response = self.post("/participants", json=body)
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    def code(self, participant_id: str, user: OrgUser | None = None) -> str:
        response = self.post(f"/participants/{participant_id}/code", user)
        assert response.status_code == 201, response.get_json()
        return response.get_json()["code"]

    def join(self, participant_id: str) -> str:
        """A fresh code for the participant, exchanged for a participant token."""
        response = join(self.api, self.code(participant_id))
        assert response.status_code == 200, response.get_json()
        token = response.get_json()["access_token"]
        self.tokens[participant_id] = token
        return token

    def headers(self, participant_id: str) -> dict[str, str]:
        """The Authorization header of the participant's token (joining first if needed)."""
        token = self.tokens.get(participant_id) or self.join(participant_id)
        return bearer(token)

    def joined(self, role: str, **fields: Any) -> tuple[dict[str, Any], dict[str, str]]:
        """A new participant who has joined: (participant, Authorization header)."""
        participant = self.add(role, **fields)
        return participant, self.headers(participant["id"])

    def start(self) -> dict[str, Any]:
        response = self.post("/start")
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    def complete(self) -> dict[str, Any]:
        response = self.post("/complete")
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    def abort(self, reason: str = "视频连接中断") -> dict[str, Any]:
        response = self.post("/abort", json={"reason": reason})
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    def events(self, user: OrgUser | None = None) -> list[dict[str, Any]]:
        response = self.api.get(self.url("/events"), user or self.officer)
        assert response.status_code == 200, response.get_json()
        return response.get_json()["events"]


def officers(world: Org, station: str = "a1") -> tuple[OrgUser, OrgUser]:
    return world.user(f"{station}.officer"), world.user(f"{station}.officer2")


def criminal_case(api: Api, world: Org, station: str = "a1") -> dict[str, Any]:
    return api.case(officers(world, station)[0], "criminal")


def create_session(api: Api, officer: OrgUser, case_id: str, kind: str, **fields: Any) -> Any:
    start, end = schedule()
    body = {
        "case_id": case_id,
        "kind": kind,
        "scheduled_start": start,
        "scheduled_end": end,
        "sites": SITES,
        "video_link": "https://video.example.internal/room/42",
        **fields,
    }
    return api.post("/api/v1/sessions", officer, json=body)


def new_session(
    api: Api,
    world: Org,
    kind: str = "identification",
    *,
    case: dict[str, Any] | None = None,
    station: str = "a1",
    presiding: bool = True,
    **fields: Any,
) -> SessionSetup:
    """A scheduled session in a (new) criminal case, with both station officers presiding."""
    officer, second = officers(world, station)
    case = case or criminal_case(api, world, station)
    response = create_session(api, officer, case["id"], kind, **fields)
    assert response.status_code == 201, response.get_json()
    setup = SessionSetup(api, world, case, response.get_json(), officer, second)
    if presiding:
        setup.add("presiding", user_id=str(officer.id), site="centre")
        setup.add("presiding", user_id=str(second.id), site="centre")
    return setup


def identification_session(api: Api, world: Org, **fields: Any) -> SessionSetup:
    """A scheduled identification with two presiding officers and no other participants."""
    return new_session(api, world, "identification", **fields)


def interrogation_session(
    api: Api, world: Org, **fields: Any
) -> tuple[SessionSetup, dict[str, Any], dict[str, Any]]:
    """A scheduled interrogation of a suspect in the detention house: (setup, person,
    suspect participant)."""
    officer, _ = officers(world)
    case = criminal_case(api, world)
    person = add_person(api, officer, case["id"], **SUSPECT)
    setup = new_session(api, world, "interrogation", case=case, **fields)
    suspect = setup.add("suspect", person_id=person["id"], site="jail")
    return setup, person, suspect


def meeting_session(
    api: Api, world: Org, **fields: Any
) -> tuple[SessionSetup, dict[str, Any], dict[str, Any]]:
    """A scheduled lawyer meeting: (setup, suspect participant, lawyer participant)."""
    officer, _ = officers(world)
    case = criminal_case(api, world)
    person = add_person(api, officer, case["id"], **SUSPECT)
    setup = new_session(api, world, "meeting", case=case, **fields)
    suspect = setup.add("suspect", person_id=person["id"], site="jail")
    lawyer = setup.add("lawyer", name="陈律师", site="centre")
    return setup, suspect, lawyer
