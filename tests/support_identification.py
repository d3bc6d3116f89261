"""Helpers for identification tests: a prepared identification session (a suspect, an
identifier who is a person of the case, a 见证人 and an administrator who signs in as a
user), lineup bodies, and an identifier taken through the procedure with their token.

A lineup is run through the API like this (see ``Identification.run``):

1. ``POST /api/v1/sessions/{id}/lineups`` (a presiding investigator) with the kind,
   ``suspicion_reason``, ``filler_criteria`` and the members, exactly one a target;
2. ``POST .../identifiers/{pid}/interview`` then ``POST .../identifiers/{pid}/lineup``;
3. with the identifier's participant token, under ``/api/v1/participant/identification``:
   ``GET ""``, ``POST /instructions``, ``GET /members`` (and in sequential mode
   ``POST /responses`` for each member), ``POST /choice``, ``POST /confidence``.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any

from flask import Flask

from backend.extensions import db
from backend.org import service as org
from backend.org.models import Unit
from shared.enums import Role
from shared.identification import load_rules

from conftest import PASSWORD, Api, Org, OrgUser
from support_documents import SUSPECT, add_person
from support_sessions import SessionSetup, new_session

ME = "/api/v1/participant/identification"
VICTIM = {"role": "victim", "name": "王芳", "id_number": "110101199203031226"}
INTERVIEW = {
    "description": "男，三十岁左右，身高一米七五，寸头，左眉有疤。",
    "viewing_conditions": "夜市路灯下，正面看到约十秒。",
    "distance": "约三米",
    "lighting": "路灯",
    "duration": "约十秒",
}
REASON = "监控录像显示李强案发时在现场，且其体貌特征与被害人描述一致。"
CRITERIA = "同性别、年龄相近（28至35岁）、身高体型相近、寸头，均与本案无关。"


def id_number() -> str:
    """A resident ID number no other test uses: identifiers and suspects are matched
    across cases by it."""
    return "1101011990" + f"{secrets.randbelow(10**8):08d}"


def extra_officer(app: Flask, world: Org, station: str = "a1") -> OrgUser:
    """One more officer of a station (the stations have two): the blind administrator."""
    with app.app_context():
        user = org.create_user(
            username=f"adm{uuid.uuid4().hex[:10]}",
            display_name="组织人员",
            password=PASSWORD,
            unit=db.session.get_one(Unit, world.unit(station).id),
            roles={Role.OFFICER},
        )
        db.session.commit()
        return OrgUser(user.id, user.username, user.unit_id, user.roles)


def members(
    kind: str,
    target: dict[str, Any],
    *,
    count: int | None = None,
    fillers: str = "陪衬",
    photos: list[str] | None = None,
) -> list[dict[str, Any]]:
    """``count`` members (the kind's minimum by default), the target first; photo kinds
    take one evidence id per member from ``photos``."""
    count = count or load_rules().kinds[kind].minimum
    rows = [{"is_target": True, **target}] + [
        {"is_target": False, "description": f"{fillers}{n}号：男，约三十岁，寸头"}
        for n in range(1, count)
    ]
    if photos is not None:
        for row, evidence_id in zip(rows, photos, strict=False):
            row["evidence_id"] = evidence_id
    return rows


def lineup_body(kind: str, lineup_members: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    return {
        "kind": kind,
        "suspicion_reason": REASON,
        "filler_criteria": CRITERIA,
        "members": lineup_members,
        **fields,
    }


@dataclass
class Identification:
    """A scheduled identification session and its people."""

    setup: SessionSetup
    suspect: dict[str, Any]
    victim: dict[str, Any]
    identifier: dict[str, Any]
    witness: dict[str, Any] | None
    administrator: OrgUser | None
    id_numbers: tuple[str, str] = ("", "")
    """The suspect's and the victim's resident ID numbers."""
    bodies: list[tuple[str, Any]] = field(default_factory=list)
    """Every participant response: (path, JSON body), for the blind and order checks."""

    @property
    def api(self) -> Api:
        return self.setup.api

    @property
    def case_id(self) -> str:
        return self.setup.case["id"]

    def lineup(self, kind: str = "live_person", **kw: Any) -> dict[str, Any]:
        target = kw.pop("target", None) or {
            "person_id": self.suspect["id"],
            "description": "李强，男，32岁",
        }
        response = self.setup.post("/lineups", json=lineup_body(kind, members(kind, target, **kw)))
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    def interview(self, participant_id: str | None = None, **fields: Any) -> Any:
        pid = participant_id or self.identifier["id"]
        return self.setup.post(f"/identifiers/{pid}/interview", json={**INTERVIEW, **fields})

    def assign(self, lineup_id: str, participant_id: str | None = None) -> Any:
        pid = participant_id or self.identifier["id"]
        return self.setup.post(f"/identifiers/{pid}/lineup", json={"lineup_id": lineup_id})

    def me(self, method: str, path: str = "", participant_id: str | None = None, **kw: Any) -> Any:
        """A request with the identifier's participant token; the body is kept."""
        headers = self.setup.headers(participant_id or self.identifier["id"])
        response = self.api.client.open(ME + path, method=method, headers=headers, **kw)
        if response.is_json:
            self.bodies.append((path, response.get_json()))
        return response

    def run(
        self,
        lineup_id: str,
        *,
        participant_id: str | None = None,
        choice: dict[str, Any] | None = None,
        confidence: dict[str, Any] | None = None,
        yes: int | None = None,
    ) -> dict[str, Any]:
        """Interview, assign and take the identifier through to the confidence statement.

        Sequential mode answers "yes" to position ``yes`` (if given) and "no" otherwise.
        """
        pid = participant_id or self.identifier["id"]
        assert self.interview(pid).status_code == 201
        assigned = self.assign(lineup_id, pid)
        assert assigned.status_code == 200, assigned.get_json()
        state = self.me("GET", participant_id=pid).get_json()
        assert state["step"] == "instructions", state
        acknowledged = self.me("POST", "/instructions", pid, json={"acknowledged": True})
        assert acknowledged.status_code == 200, acknowledged.get_json()
        if state["presentation"] == "sequential":
            for position in range(1, state["member_count"] + 1):
                shown = self.me("GET", "/members", pid).get_json()
                assert [m["position"] for m in shown["members"]] == [position]
                answer = "yes" if position == yes else "no"
                response = self.me(
                    "POST", "/responses", pid, json={"position": position, "answer": answer}
                )
                assert response.status_code == 200, response.get_json()
        else:
            shown = self.me("GET", "/members", pid).get_json()
            assert len(shown["members"]) == state["member_count"]
        chosen = self.me("POST", "/choice", pid, json=choice or {"outcome": "dont_know"})
        assert chosen.status_code == 200, chosen.get_json()
        assert chosen.get_json()["step"] == "confidence"
        stated = self.me(
            "POST",
            "/confidence",
            pid,
            json=confidence or {"statement": "我不太确定。", "scale": 30},
        )
        assert stated.status_code == 200, stated.get_json()
        return stated.get_json()


def prepared(
    api: Api,
    world: Org,
    *,
    presentation: str = "sequential",
    witness: bool = True,
    administrator: OrgUser | None = None,
    case: dict[str, Any] | None = None,
    suspect: dict[str, Any] | None = None,
    victim: dict[str, Any] | None = None,
    id_numbers: tuple[str, str] | None = None,
) -> Identification:
    """A scheduled identification (not started) in a criminal case with a suspect and a
    victim; the victim is the identifier. Both get fresh ID numbers unless
    ``id_numbers`` (suspect's, victim's) names them."""
    setup = new_session(
        api, world, "identification", case=case, settings={"presentation": presentation}
    )
    officer = setup.officer
    numbers = id_numbers or (id_number(), id_number())
    suspect = suspect or add_person(
        api, officer, setup.case["id"], **{**SUSPECT, "id_number": numbers[0]}
    )
    victim = victim or add_person(
        api, officer, setup.case["id"], **{**VICTIM, "id_number": numbers[1]}
    )
    identifier = setup.add("identifier", person_id=victim["id"], site="centre")
    attesting = setup.add("witness", name="赵敏", site="centre") if witness else None
    if administrator is not None:
        setup.add("administrator", user_id=str(administrator.id), site="centre")
    ident = Identification(setup, suspect, victim, identifier, attesting, administrator)
    ident.id_numbers = numbers
    return ident
