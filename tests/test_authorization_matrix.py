"""Authorization matrix (checklist Z1, Z2), generated from the route table.

Every operation under ``/api/v1`` in ``app.url_map`` must have an entry in
``ACCESS`` (keyed by endpoint name): the station roles that pass its
function-level check, how a foreign unit's object reaches it (path parameter,
a reference in the body, a list it must not appear in), a body and headers
that are valid for an allowed caller, and who succeeds on their own unit's
object. A new route without an entry fails ``test_every_api_route_is_in_the_table``.

The tests then call every operation:

* as every role of station a1 (and of district A) on objects of foreign units
  (station b1; station a2 for the station callers): refused with 404, or 403
  for a role that may not use the operation, and nothing in the database
  changes;
* as every role on its own unit's objects: roles outside ``roles`` get 403,
  every allowed role can read, and the positive role succeeds, so the matrix
  cannot pass by refusing everything;
* without a token: 401.

The calls go to a private organisation (built with conftest's ``build_org``)
shared only with ``tests/test_audit.py``, which reuses the table: the successful
calls (new units and users, renamed units) never leak into the ``world`` other
test files share, and the "nothing changed" checks see no one else's writes.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any
from unittest import mock

import pytest
import sqlalchemy as sa
from flask import Flask

from backend.auth import service as auth_service
from backend.evidence.models import AlertKind, EvidenceAlert
from backend.extensions import db
from backend.lifecycle import API_PREFIX
from shared import signing

import support_documents as documents
import support_evidence as evidence
import support_identification as identification
import support_sessions as sessions
from conftest import PASSWORD, Api, Org, OrgUser, build_org

PROBLEM_JSON = "application/problem+json"
ROLES = ("officer", "legal", "leader", "manager", "admin")
"""Role keys of station staff (``a1.officer`` ...); district staff have all but officer."""

ALL = frozenset(ROLES)
READERS = frozenset({"officer", "legal", "leader", "manager"})
REVEALERS = frozenset({"officer", "legal", "leader"})
OFFICER = frozenset({"officer"})
DECIDERS = frozenset({"legal", "leader"})
ADMIN = frozenset({"admin"})
ALERT_READERS = frozenset({"manager", "leader", "admin"})
CUSTODIANS = frozenset({"officer", "manager"})
UPLOAD_BYTES = b"0123456789abcdef"
SUPERVISORS = frozenset({"manager", "leader", "legal"})
PERIODS = itertools.count()
"""Numbers of past weeks and months: each bulletin or assessment asked for is a new one."""
ROLE_VALUES = {
    "officer": "officer",
    "legal": "legal_officer",
    "leader": "leader",
    "manager": "case_manager",
    "admin": "admin",
}

PATH_PARAMS = {
    "case_id": "case_id",
    "incident_id": "incident_id",
    "person_id": "person_id",
    "approval_id": "approval_id",
    "unit_id": "unit_id",
    "user_id": "user_id",
    "device_pk": "device_pk",
    "document_id": "document_id",
    "signature_id": "signature_id",
    "evidence_id": "evidence_id",
    "upload_id": "upload_id",
    "warning_id": "warning_id",
    "bulletin_id": "bulletin_id",
    "assessment_id": "assessment_id",
    "problem_id": "problem_id",
    "entry_id": "entry_id",
    "session_id": "session_id",
    "participant_id": "participant_id",
    "position": "position",
}
"""Path parameter name -> the ``Site`` attribute that fills it."""


# The objects of one station


def incident_body(**fields: Any) -> dict[str, Any]:
    return {
        "occurred_at": "2026-03-01T09:30:00+00:00",
        "place": "人民路1号",
        "category": "治安",
        "summary": "两人在夜市互殴。",
        "reporter": {"name": "张伟", "phone": "13812345678", "id_number": "110101199001011234"},
        **fields,
    }


PERSON_BODY = {
    "role": "suspect",
    "name": "李强",
    "id_number": "110101198505051234",
    "phone": "13900001111",
    "address": "北京市东城区和平里街道1号",
}
NOTIFY_PAYLOAD = {
    "facts": "殴打他人",
    "reasons_and_basis": "治安管理处罚法",
    "hearing_requested": False,
}
DECISION_PAYLOAD = {"penalty": "fine", "penalty_detail": "罚款五百元"}


class Site:
    """One station's objects, made through the API by its own staff on first use."""

    def __init__(self, api: Api, org: Org, station: str) -> None:
        self.api, self.org, self.station = api, org, station
        self.district = station[0]

    def staff(self, role: str) -> OrgUser:
        return self.org.user(f"{self.station}.{role}")

    def counterpart(self, user_key: str) -> OrgUser:
        """The user of this site in the position ``user_key`` holds at station a1."""
        unit, _, role = user_key.partition(".")
        return self.org.user(f"{self.station if len(unit) > 1 else self.district}.{role}")

    def param(self, name: str) -> str:
        return str(getattr(self, PATH_PARAMS[name]))

    @property
    def unit_id(self) -> str:
        return str(self.org.unit(self.station).id)

    @property
    def parent_unit_id(self) -> str:
        return str(self.org.unit(self.district).id)

    @property
    def user_id(self) -> str:
        """A user whose record administrators change (not an officer who signs documents)."""
        return str(self.staff("manager").id)

    @cached_property
    def case(self) -> dict[str, Any]:
        """An accepted administrative case (with its reporter and a suspect)."""
        return self.api.case(self.staff("officer"))

    @property
    def case_id(self) -> str:
        return self.case["id"]

    @cached_property
    def person_id(self) -> str:
        response = self.api.post(
            f"/api/v1/cases/{self.case_id}/persons", self.staff("officer"), json=PERSON_BODY
        )
        assert response.status_code == 201, response.get_json()
        return response.get_json()["id"]

    @cached_property
    def incident_id(self) -> str:
        """A reported incident, not yet accepted or closed."""
        response = self.api.post("/api/v1/incidents", self.staff("officer"), json=incident_body())
        assert response.status_code == 201, response.get_json()
        return response.get_json()["id"]

    @cached_property
    def approval(self) -> dict[str, Any]:
        """The pending first (legal officer) approval of a requested decision."""
        officer = self.staff("officer")
        case = self.api.case(officer)
        documents.signed_notification_record(self.api, officer, self.staff("officer2"), case["id"])
        for action, payload, status in (
            ("start_investigation", {}, 200),
            ("notify", NOTIFY_PAYLOAD, 200),
            ("submit_decision", DECISION_PAYLOAD, 202),
        ):
            response = self.api.step(case["id"], officer, action, payload)
            assert response.status_code == status, response.get_json()
        approval = self.api.pending_approval(case["id"], self.staff("legal"))
        assert approval["role"] == "legal_officer"
        return approval

    @property
    def approval_id(self) -> str:
        return self.approval["id"]

    @cached_property
    def device(self) -> dict[str, Any]:
        """The officer's enrolled phone."""
        body = {
            "device_id": _unique("phone-"),
            "name": "执法手机",
            "public_key": signing.public_key_text(signing.new_private_key()),
        }
        response = self.api.post("/api/v1/devices", self.staff("officer"), json=body)
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    @property
    def device_pk(self) -> str:
        return self.device["id"]

    @cached_property
    def signing_device(self) -> documents.Device:
        return documents.enroll(self.api, self.staff("officer"))

    def _document(self, kind: str = "inquiry_record") -> tuple[dict[str, Any], str]:
        return documents.new_document(
            self.api, self.staff("officer"), self.case_id, kind, self.person_id
        )

    @cached_property
    def document(self) -> dict[str, Any]:
        """A finalised transcript about the suspect, signed by the officer with a fingerprint."""
        officer = self.staff("officer")
        document = documents.finalized(self.api, officer, *self._document())
        response = self.signing_device.sign(
            document,
            "officer",
            documents.display_name(officer),
            user=officer,
            fingerprint=documents.png_bytes(shade=90),
        )
        assert response.status_code == 201, response.get_json()
        return {**document, "signature_id": response.get_json()["id"]}

    @property
    def document_id(self) -> str:
        return self.document["id"]

    @property
    def signature_id(self) -> str:
        return self.document["signature_id"]

    @cached_property
    def draft(self) -> tuple[dict[str, Any], str]:
        """A draft transcript and its ETag."""
        return self._document()

    @cached_property
    def complete_draft(self) -> tuple[dict[str, Any], str]:
        """A draft filled in enough to be finalised, and its ETag."""
        document, etag = self._document()
        response = documents.patch(
            self.api, self.staff("officer"), document["id"], etag, documents.completion(document)
        )
        assert response.status_code == 200, response.get_json()
        return document, response.headers["ETag"]

    @cached_property
    def unsigned_document(self) -> dict[str, Any]:
        """A finalised transcript nobody has signed yet."""
        return documents.finalized(self.api, self.staff("officer"), *self._document())

    @cached_property
    def evidence_maker(self) -> evidence.EvidenceMaker:
        officer = self.staff("officer")
        return evidence.EvidenceMaker(self.api, officer, evidence.enrol(self.api, officer))

    def evidence_submission(self) -> dict[str, Any]:
        """A signed finalisation of a new upload by the officer to the site's case."""
        maker = self.evidence_maker
        data = evidence.png_bytes(seed=uuid.uuid4().int % 251)
        upload_id = evidence.upload(self.api, maker.officer, self.case_id, data, "photo.png")
        return evidence.evidence_body(self.case_id, upload_id, data, maker.device)

    def new_evidence(self) -> dict[str, Any]:
        return self.evidence_maker.add(
            self.case_id, evidence.png_bytes(seed=uuid.uuid4().int % 251)
        )

    @cached_property
    def evidence(self) -> dict[str, Any]:
        return self.new_evidence()

    @property
    def evidence_id(self) -> str:
        return self.evidence["id"]

    @cached_property
    def alert_id(self) -> str:
        """An integrity alert about the site's evidence, as the sweep raises it."""
        with self.api.client.application.app_context():
            alert = EvidenceAlert(
                evidence_id=uuid.UUID(self.evidence_id),
                kind=AlertKind.CORRUPTED,
                detail="the stored file no longer has its SHA-256",
            )
            db.session.add(alert)
            db.session.commit()
            return str(alert.id)

    @cached_property
    def disposal_pending_evidence_id(self) -> str:
        """Evidence whose disposal the officer has requested."""
        evidence_id = self.new_evidence()["id"]
        response = self.api.post(
            f"/api/v1/evidence/{evidence_id}/disposal",
            self.staff("officer"),
            json={"reason": "依法销毁"},
        )
        assert response.status_code == 201, response.get_json()
        return evidence_id

    @cached_property
    def upload_id(self) -> str:
        """An unfinished upload of 16 bytes by the officer to the site's case."""
        response = self.api.post(
            "/api/v1/uploads", self.staff("officer"), headers=self.upload_headers()
        )
        assert response.status_code == 201, response.get_data(as_text=True)
        return response.headers["Location"].rstrip("/").rpartition("/")[2]

    def upload_headers(self) -> dict[str, str]:
        return {
            **evidence.TUS,
            "Upload-Length": str(len(UPLOAD_BYTES)),
            "Upload-Metadata": evidence.tus_metadata(case_id=self.case_id, filename="p.png"),
        }

    def new_warning(self) -> str:
        """A warning on the site's case: a seizure recorded with one officer present."""
        officer = self.staff("officer")
        response = self.api.post(
            f"/api/v1/cases/{self.case_id}/facts",
            officer,
            json={
                "kind": "property_seized",
                "subject": _unique("item-"),
                "started_at": datetime.now(UTC).isoformat(),
                "data": {"officers": 1},
            },
        )
        assert response.status_code == 201, response.get_json()
        query = f"?case_id={self.case_id}&rule_id=seizure_two_officers&status=open&limit=200"
        items = self.api.get("/api/v1/warnings" + query, officer).get_json()["items"]
        known = self.__dict__.setdefault("_warnings_seen", set())
        fresh = [w["id"] for w in items if w["id"] not in known]
        assert len(fresh) == 1, items
        known.add(fresh[0])
        return fresh[0]

    @cached_property
    def warning_id(self) -> str:
        return self.new_warning()

    @cached_property
    def resolvable_warning_id(self) -> str:
        return self.new_warning()

    @cached_property
    def bulletin_id(self) -> str:
        response = self.api.post("/api/v1/bulletins", self.staff("manager"), json=self.bulletin())
        assert response.status_code == 201, response.get_json()
        return response.get_json()["id"]

    def bulletin(self) -> dict[str, str]:
        """A finished ISO week no earlier call has asked for."""
        n = next(PERIODS)
        return {"unit_id": self.unit_id, "week": f"{2025 - n // 52}-W{n % 52 + 1:02d}"}

    @cached_property
    def assessment_id(self) -> str:
        response = self.api.post(
            "/api/v1/assessments", self.staff("manager"), json=self.assessment()
        )
        assert response.status_code == 201, response.get_json()
        return response.get_json()["id"]

    def assessment(self) -> dict[str, str]:
        """A finished month no earlier call has asked for."""
        n = next(PERIODS)
        return {"unit_id": self.unit_id, "month": f"{2025 - n // 12}-{n % 12 + 1:02d}"}

    def new_incident(self) -> str:
        response = self.api.post("/api/v1/incidents", self.staff("officer"), json=incident_body())
        assert response.status_code == 201, response.get_json()
        return response.get_json()["id"]

    @cached_property
    def key_incident(self) -> dict[str, Any]:
        """An incident the legal officer marked as key (重点警情)."""
        incident_id = self.new_incident()
        response = self.api.post(
            f"/api/v1/incidents/{incident_id}/key",
            self.staff("legal"),
            json={"reason": "涉未成年人"},
        )
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    @cached_property
    def unmarked_incident_id(self) -> str:
        return self.new_incident()

    @cached_property
    def inspection_id(self) -> str:
        response = self.api.post(
            f"/api/v1/cases/{self.case_id}/inspections",
            self.staff("legal"),
            json={"result": "problems_found", "note": "笔录不规范"},
        )
        assert response.status_code == 201, response.get_json()
        return response.get_json()["id"]

    def problem_body(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id,
            "category": "irregular_record",
            "description": "笔录未记载起止时间",
            "responsible_id": str(self.staff("officer").id),
            "deadline": (datetime.now(UTC) + timedelta(days=7)).isoformat(),
        }

    def new_problem(self) -> str:
        response = self.api.post("/api/v1/problems", self.staff("legal"), json=self.problem_body())
        assert response.status_code == 201, response.get_json()
        return response.get_json()["id"]

    @cached_property
    def problem_id(self) -> str:
        return self.new_problem()

    @cached_property
    def open_problem_id(self) -> str:
        return self.new_problem()

    @cached_property
    def submitted_problem_id(self) -> str:
        """A problem whose rectification the responsible officer has submitted."""
        problem_id = self.new_problem()
        response = self.api.post(
            f"/api/v1/problems/{problem_id}/rectification",
            self.staff("officer"),
            json={"note": "已补正笔录"},
        )
        assert response.status_code == 200, response.get_json()
        return problem_id

    def entry_body(self) -> dict[str, Any]:
        return {
            "name": "李四",
            "reason": "传唤询问",
            "room": "询问室2",
            "case_id": self.case_id,
            "purpose": "questioning",
        }

    def new_entry(self) -> str:
        response = self.api.post(
            "/api/v1/handling-area/entries", self.staff("officer"), json=self.entry_body()
        )
        assert response.status_code == 201, response.get_json()
        return response.get_json()["id"]

    @cached_property
    def entry_id(self) -> str:
        return self.new_entry()

    @cached_property
    def open_entry_id(self) -> str:
        return self.new_entry()

    # Remote sessions

    def new_session(self, kind: str, **fields: Any) -> sessions.SessionSetup:
        """A scheduled session of ``kind`` in a new criminal case of the station, its two
        officers presiding."""
        officer, second = self.staff("officer"), self.staff("officer2")
        case = self.api.case(officer, "criminal")
        response = sessions.create_session(self.api, officer, case["id"], kind, **fields)
        assert response.status_code == 201, response.get_json()
        setup = sessions.SessionSetup(
            self.api, self.org, case, response.get_json(), officer, second
        )
        setup.add("presiding", user_id=str(officer.id), site="centre")
        setup.add("presiding", user_id=str(second.id), site="centre")
        return setup

    @cached_property
    def session(self) -> sessions.SessionSetup:
        """A scheduled identification with an identifier who joins with a code."""
        return self.new_session("identification")

    @property
    def session_id(self) -> str:
        return self.session.id

    @cached_property
    def participant_id(self) -> str:
        return self.session.add("identifier", name="王芳", site="centre")["id"]

    def meeting(self) -> sessions.SessionSetup:
        """A scheduled lawyer meeting with a detained suspect."""
        setup = self.new_session("meeting")
        person = documents.add_person(
            self.api, setup.officer, setup.case["id"], **documents.SUSPECT
        )
        setup.add("suspect", person_id=person["id"], site="jail")
        setup.add("lawyer", name="陈律师", site="centre")
        return setup

    @cached_property
    def scheduled_meeting_id(self) -> str:
        return self.meeting().id

    def interrogation(self) -> tuple[sessions.SessionSetup, str]:
        """A running interrogation and its suspect participant's id."""
        setup = self.new_session("interrogation")
        person = documents.add_person(
            self.api, setup.officer, setup.case["id"], **documents.SUSPECT
        )
        suspect = setup.add("suspect", person_id=person["id"], site="jail")
        setup.start()
        return setup, suspect["id"]

    def transcript(self, setup: sessions.SessionSetup) -> str:
        """A new interrogation transcript in the session's case."""
        person = documents.add_person(
            self.api, setup.officer, setup.case["id"], **documents.SUSPECT
        )
        document, _ = documents.new_document(
            self.api, setup.officer, setup.case["id"], "interrogation_record", person["id"]
        )
        return document["id"]

    @cached_property
    def running_interrogation(self) -> sessions.SessionSetup:
        return self.interrogation()[0]

    @cached_property
    def completable_interrogation_id(self) -> str:
        """A running interrogation whose rights notice is given and transcript linked."""
        setup, suspect_id = self.interrogation()
        notice = setup.post("/notices", json={"notice": "rights", "participant_id": suspect_id})
        assert notice.status_code == 201, notice.get_json()
        linked = setup.post("/documents", json={"document_id": self.transcript(setup)})
        assert linked.status_code == 200, linked.get_json()
        return setup.id

    @cached_property
    def transcript_id(self) -> str:
        """A transcript of the running interrogation's case, not yet linked."""
        return self.transcript(self.running_interrogation)

    @cached_property
    def recording_id(self) -> str:
        """A video of the running interrogation's case, not yet linked."""
        return self.evidence_maker.add(
            self.running_interrogation.case["id"], evidence.png_bytes(seed=uuid.uuid4().int % 251)
        )["id"]

    @cached_property
    def notice_participant_id(self) -> str:
        """A suspect of the running interrogation who has not had the rights notice."""
        setup = self.running_interrogation
        person = documents.add_person(
            self.api, setup.officer, setup.case["id"], **documents.SUSPECT
        )
        return setup.add("suspect", person_id=person["id"], site="jail")["id"]

    # Identification: the caller's own station's sessions in each state a call needs

    position = 1
    """The lineup position a member-image request names."""

    def identification(self, presentation: str = "simultaneous") -> identification.Identification:
        """A running identification with a suspect, an identifier and a 见证人."""
        ident = identification.prepared(self.api, self.org, presentation=presentation)
        ident.setup.start()
        return ident

    def lineup_body(self) -> dict[str, Any]:
        """An object lineup (five members, the target first)."""
        rows = identification.members("object", {"description": "黑色双肩包，左侧有破口"})
        return identification.lineup_body("object", rows)

    @cached_property
    def running_identification(self) -> identification.Identification:
        return self.identification()

    @cached_property
    def interviewed(self) -> tuple[identification.Identification, str]:
        """A running identification whose identifier was interviewed, and a lineup's id."""
        ident = self.identification()
        lineup = ident.lineup("live_person")
        assert ident.interview().status_code == 201
        return ident, lineup["id"]

    def identifier_at(
        self, step: str, presentation: str = "simultaneous", photos: bool = False
    ) -> str:
        """The Authorization header of an identifier whose procedure reached ``step``
        (instructions, acknowledged, shown or chosen); with ``photos``, of a lineup of
        object photos."""
        ident = self.identification(presentation)
        if photos:
            images = [
                # A size of the matrix's own: no other test's image has these bytes.
                self.evidence_maker.add(
                    ident.case_id, evidence.png_bytes(width=6, height=6, seed=n)
                )["id"]
                for n in range(10)
            ]
            lineup = ident.lineup(
                "object_photo", target={"description": "黑色双肩包照片"}, photos=images
            )
        else:
            lineup = ident.lineup("live_person")
        assert ident.interview().status_code == 201
        assert ident.assign(lineup["id"]).status_code == 200
        reached = ["instructions", "acknowledged", "shown", "chosen"].index(step)
        if reached >= 1:
            acknowledged = ident.me("POST", "/instructions", json={"acknowledged": True})
            assert acknowledged.status_code == 200, acknowledged.get_json()
        if reached >= 2:
            assert ident.me("GET", "/members").status_code == 200
        if reached >= 3:
            chosen = ident.me("POST", "/choice", json={"outcome": "dont_know"})
            assert chosen.status_code == 200, chosen.get_json()
        return ident.setup.headers(ident.identifier["id"])["Authorization"]

    @cached_property
    def waiting_identifier(self) -> str:
        """The identifier of the scheduled identification, joined."""
        return self.session.headers(self.participant_id)["Authorization"]

    @cached_property
    def instructed_identifier(self) -> str:
        return self.identifier_at("instructions")

    @cached_property
    def acknowledged_identifier(self) -> str:
        return self.identifier_at("acknowledged")

    @cached_property
    def shown_identifier(self) -> str:
        return self.identifier_at("shown")

    @cached_property
    def sequential_identifier(self) -> str:
        return self.identifier_at("shown", "sequential")

    @cached_property
    def chosen_identifier(self) -> str:
        return self.identifier_at("chosen")

    @cached_property
    def photo_identifier(self) -> str:
        return self.identifier_at("shown", photos=True)

    @cached_property
    def administrator(self) -> str:
        """The administrator of a running identification, joined with a code."""
        ident = self.identification()
        participant = ident.setup.add("administrator", name="组织辨认人员", site="centre")
        return ident.setup.headers(participant["id"])["Authorization"]

    @cached_property
    def ended_identification_id(self) -> str:
        """A completed identification whose identifier finished (its record not yet written)."""
        ident = self.identification()
        ident.run(ident.lineup("live_person")["id"])
        ident.setup.complete()
        return ident.setup.id

    @cached_property
    def signing_identifier(self) -> tuple[str, dict[str, Any]]:
        """An identifier whose record the other signers have signed, and the body of the
        identifier's signature made on a presiding officer's tablet."""
        ident = self.identification()
        ident.run(ident.lineup("live_person")["id"])
        ident.setup.complete()
        response = ident.setup.post("/record")
        assert response.status_code == 201, response.get_json()
        [record] = response.get_json()
        tablet = documents.enroll(self.api, ident.setup.officer)
        for role, name, user in (
            ("officer", documents.display_name(ident.setup.officer), ident.setup.officer),
            ("second_officer", documents.display_name(ident.setup.second), ident.setup.second),
            ("witness", "赵敏", None),
        ):
            signed = tablet.sign(record, role, name, user=user)
            assert signed.status_code == 201, signed.get_json()
        body = tablet.body(record, "party", ident.identifier["name"])
        del body["signer_role"], body["signer_name"]
        return ident.setup.headers(ident.identifier["id"])["Authorization"], body

    def etag(self) -> str:
        return self.api.etag(self.case_id, self.staff("officer"))

    def build_all(self) -> Site:
        for name in (
            "case",
            "person_id",
            "incident_id",
            "approval",
            "device",
            "document",
            "evidence",
            "alert_id",
            "upload_id",
            # Built here, as the caller's objects in the states some calls need, so that
            # building them never counts as a change made by a refused call.
            "draft",
            "complete_draft",
            "unsigned_document",
            "disposal_pending_evidence_id",
            "warning_id",
            "resolvable_warning_id",
            "bulletin_id",
            "assessment_id",
            "key_incident",
            "unmarked_incident_id",
            "inspection_id",
            "problem_id",
            "open_problem_id",
            "submitted_problem_id",
            "entry_id",
            "open_entry_id",
            "session",
            "participant_id",
            "scheduled_meeting_id",
            "running_interrogation",
            "completable_interrogation_id",
            "transcript_id",
            "recording_id",
            "notice_participant_id",
        ):
            getattr(self, name)
        if self.station == "a1":
            for name in HOME_ONLY:
                getattr(self, name)
        return self


HOME_ONLY = (
    "running_identification",
    "interviewed",
    "ended_identification_id",
    "waiting_identifier",
    "instructed_identifier",
    "acknowledged_identifier",
    "shown_identifier",
    "sequential_identifier",
    "chosen_identifier",
    "photo_identifier",
    "administrator",
    "signing_identifier",
)
"""Objects the callers' own station needs in particular states; the support helpers
make them at station a1 (foreign stations never need them)."""


# The table


@dataclass(frozen=True)
class Access:
    """How one endpoint is reached and who may use it.

    ``scope`` says how an object of a foreign unit gets into the request:
    ``object`` (path parameters), ``reference`` (an id in the body), ``list``
    (it must not be listed), ``caller`` (the operation concerns only the
    caller: nothing foreign to name), ``public`` (no token) or ``participant``
    (a remote-session participant's token, which names its own session and
    nothing else; ``roles`` is empty: no user token reaches it). ``own_path``
    names the caller's own object where an operation needs one in a particular
    state (a draft to edit, a finalised document to sign).
    """

    scope: str
    roles: frozenset[str]
    positive: str = "a1.officer"
    status: int = 200
    body: Callable[[Site], dict[str, Any]] | None = None
    foreign_body: Callable[[Site], dict[str, Any]] | None = None
    headers: Callable[[Site], dict[str, str]] | None = None
    refused: int = 404
    listed: tuple[tuple[str, Callable[[Site], set[str]]], ...] = ()
    fresh_session: bool = False
    public: bool = False
    own_path: Callable[[Site], dict[str, str]] | None = None
    query: str | Callable[[Site], str] = ""
    data: Callable[[Site], bytes] | None = None
    participant: Callable[[Site], str] | None = None
    """For ``participant`` scope: the Authorization header of the participant who calls."""

    def foreign(self, site: Site) -> dict[str, Any] | None:
        make = self.foreign_body or self.body
        return make(site) if make else None


def _unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


ACCESS: dict[str, Access] = {
    # Authentication
    "auth.login": Access(
        "public",
        ALL,
        body=lambda s: {"username": s.staff("officer").username, "password": PASSWORD},
        public=True,
    ),
    "auth.refresh": Access(
        "public",
        ALL,
        body=lambda s: {"refresh_token": s.api.login(s.staff("officer"))["refresh_token"]},
        public=True,
    ),
    "auth.logout": Access("caller", ALL, status=204, fresh_session=True),
    # Organisation
    "org.me": Access("caller", ALL),
    "org.list_units": Access("list", ALL, listed=(("", lambda s: {s.unit_id}),)),
    "org.get_unit": Access("object", ALL),
    "org.update_unit": Access(
        "object", ADMIN, positive="a1.admin", body=lambda s: {"name": _unique("更名派出所")}
    ),
    "org.create_unit": Access(
        "reference",
        ADMIN,
        positive="a.admin",
        status=201,
        body=lambda s: {
            "code": _unique("U"),
            "name": "新建派出所",
            "tier": "station",
            "parent_id": s.parent_unit_id,
        },
    ),
    "org.list_users": Access(
        "list",
        ADMIN,
        positive="a1.admin",
        listed=(("", lambda s: {s.user_id}), ("?unit_id={s.unit_id}", lambda s: {s.user_id})),
    ),
    "org.create_user": Access(
        "reference",
        ADMIN,
        positive="a1.admin",
        status=201,
        body=lambda s: {
            "username": _unique("user"),
            "display_name": "新用户",
            "password": "a long enough password",
            "unit_id": s.unit_id,
            "roles": ["officer"],
        },
    ),
    "org.get_user": Access("object", ADMIN, positive="a1.admin"),
    "org.update_user": Access(
        "object", ADMIN, positive="a1.admin", body=lambda s: {"display_name": _unique("更名")}
    ),
    # Incidents and cases
    "cases.create_incident": Access(
        "reference",
        OFFICER,
        status=201,
        body=lambda s: incident_body(id=str(uuid.uuid4())),
        # The same content under the client id of the foreign incident: a
        # resend by its creator would get it back, anyone else gets 409.
        foreign_body=lambda s: incident_body(id=s.incident_id),
        refused=409,
    ),
    "cases.list_incidents": Access(
        "list",
        READERS,
        listed=(
            ("", lambda s: {s.incident_id, s.case["incident_id"]}),
            ("?status=reported", lambda s: {s.incident_id}),
        ),
    ),
    "cases.get_incident": Access("object", READERS),
    "cases.accept_incident": Access(
        "object",
        OFFICER,
        status=201,
        body=lambda s: {"case_type": "administrative", "title": "受案测试"},
    ),
    "cases.close_incident": Access(
        "object", OFFICER, body=lambda s: {"reason": "经核实不构成案件"}
    ),
    "cases.list_cases": Access(
        "list",
        READERS,
        listed=(
            ("", lambda s: {s.case_id, s.approval["case_id"]}),
            ("?unit_id={s.unit_id}", lambda s: {s.case_id, s.approval["case_id"]}),
            ("?q={s.case[number]}", lambda s: {s.case_id}),
            ("?open=true", lambda s: {s.case_id, s.approval["case_id"]}),
        ),
    ),
    "cases.get_case": Access("object", READERS),
    "cases.list_events": Access("object", READERS),
    "cases.list_persons": Access("object", READERS),
    "cases.add_person": Access(
        "object",
        OFFICER,
        status=201,
        body=lambda s: {"role": "witness", "name": "王五", "phone": "13700001111"},
    ),
    "cases.reveal_person": Access("object", REVEALERS, body=lambda s: {"reason": "核实当事人身份"}),
    # Workflow
    "workflow.list_workflows": Access("caller", ALL),
    "workflow.list_actions": Access("object", READERS),
    "workflow.request_transition": Access(
        "object",
        OFFICER,
        body=lambda s: {"action": "start_investigation", "payload": {}},
        headers=lambda s: {"If-Match": s.etag()},
    ),
    "workflow.list_approvals": Access(
        "list",
        DECIDERS,
        positive="a1.legal",
        listed=(("", lambda s: {s.approval_id}), ("?status=pending", lambda s: {s.approval_id})),
    ),
    "workflow.get_approval": Access("object", DECIDERS, positive="a1.legal"),
    "workflow.decide": Access(
        "object",
        DECIDERS,
        positive="a1.legal",
        body=lambda s: {"decision": "approve", "comment": "同意"},
    ),
    # Devices
    "devices.enroll": Access(
        "reference",
        ALL,
        status=201,
        body=lambda s: {
            "device_id": _unique("phone-"),
            "name": "新手机",
            "public_key": signing.public_key_text(signing.new_private_key()),
        },
        # The foreign officer's device id with a new key: taking it over is refused.
        foreign_body=lambda s: {
            "device_id": s.device["device_id"],
            "name": "冒用",
            "public_key": signing.public_key_text(signing.new_private_key()),
        },
        refused=409,
    ),
    "devices.list_devices": Access("list", ALL, listed=(("", lambda s: {s.device_pk}),)),
    "devices.get_device": Access("object", ADMIN, positive="a1.admin"),
    "devices.revoke": Access(
        "object", ADMIN, positive="a1.admin", body=lambda s: {"reason": "设备遗失"}
    ),
    # Documents and signatures
    "documents.list_templates": Access("caller", ALL),
    "documents.create_document": Access(
        "object",
        OFFICER,
        status=201,
        body=lambda s: {"kind": "inquiry_record", "person_id": s.person_id},
    ),
    "documents.list_documents": Access("object", READERS),
    "documents.get_document": Access("object", READERS),
    "documents.edit_document": Access(
        "object",
        OFFICER,
        body=lambda s: {"header": {"place": "询问室"}},
        headers=lambda s: {"If-Match": s.draft[1]},
        own_path=lambda s: {"document_id": s.draft[0]["id"]},
    ),
    "documents.finalize_document": Access(
        "object",
        OFFICER,
        headers=lambda s: {"If-Match": s.complete_draft[1]},
        own_path=lambda s: {"document_id": s.complete_draft[0]["id"]},
    ),
    "documents.add_signature": Access(
        "object",
        OFFICER,
        status=201,
        body=lambda s: s.signing_device.body(s.unsigned_document, "witness", "路人甲"),
        own_path=lambda s: {"document_id": s.unsigned_document["id"]},
    ),
    "documents.list_signatures": Access("object", READERS),
    "documents.get_signature_image": Access("object", READERS),
    "documents.get_signature_fingerprint": Access("object", READERS),
    "documents.get_pdf": Access("object", READERS),
    "documents.verify_document": Access("object", READERS),
    # Resumable uploads (HEAD and OPTIONS are tus's; tests/test_uploads_tus.py covers them)
    "uploads.create_upload": Access(
        "reference", OFFICER, status=201, headers=lambda s: s.upload_headers()
    ),
    "uploads.upload_chunk": Access(
        "object",
        OFFICER,
        status=204,
        headers=lambda s: {
            **evidence.TUS,
            "Upload-Offset": "0",
            "Content-Type": "application/offset+octet-stream",
        },
        data=lambda s: UPLOAD_BYTES,
    ),
    "uploads.terminate_upload": Access(
        "object", OFFICER, status=204, headers=lambda s: dict(evidence.TUS)
    ),
    # Evidence
    "evidence.finalise": Access(
        "object", OFFICER, status=201, body=lambda s: s.evidence_submission()
    ),
    "evidence.list_evidence": Access("object", READERS),
    "evidence.list_alerts": Access(
        "list", ALERT_READERS, positive="a1.manager", listed=(("", lambda s: {s.alert_id}),)
    ),
    "evidence.get_evidence": Access("object", READERS),
    "evidence.get_content": Access("object", READERS, query="?purpose=核对"),
    "evidence.list_custody": Access("object", READERS),
    "evidence.add_custody": Access(
        "object",
        CUSTODIANS,
        status=201,
        body=lambda s: {
            "event": "stored",
            "place": "办案中心",
            "purpose": "入库保管",
            "location": "A-03-12",
        },
    ),
    "evidence.request_disposal": Access(
        "object", OFFICER, status=201, body=lambda s: {"reason": "依法销毁"}
    ),
    "evidence.decide_disposal": Access(
        "object",
        frozenset({"leader"}),
        positive="a1.leader",
        body=lambda s: {"decision": "return", "comment": "尚在上诉期"},
        own_path=lambda s: {"evidence_id": s.disposal_pending_evidence_id},
    ),
    # Supervision: warnings, the feed and case facts
    "supervision.list_warnings": Access(
        "list",
        READERS,
        listed=(
            ("", lambda s: {s.warning_id}),
            ("?case_id={s.case_id}", lambda s: {s.warning_id}),
        ),
    ),
    "supervision.get_warning": Access("object", READERS),
    "supervision.acknowledge_warning": Access("object", READERS),
    "supervision.resolve_warning": Access(
        "object",
        REVEALERS,
        positive="a1.legal",
        body=lambda s: {"note": "已处理"},
        own_path=lambda s: {"warning_id": s.resolvable_warning_id},
    ),
    "supervision.get_feed": Access(
        "list", READERS, listed=(("", lambda s: {uuid.UUID(s.warning_id).hex}),)
    ),
    "supervision.record_fact": Access(
        "object",
        OFFICER,
        status=201,
        body=lambda s: {
            "kind": "family_notified",
            "subject": "p1",
            "started_at": "2026-03-02T10:00:00+08:00",
        },
    ),
    "supervision.case_supervision": Access("object", READERS),
    # Statistics, bulletins and assessments (case-management centres, leaders, legal officers)
    "stats.get_stats": Access(
        "reference",
        SUPERVISORS,
        positive="a1.manager",
        query=lambda s: f"?unit_id={s.unit_id}&from=2026-11-16&to=2026-11-22",
    ),
    "stats.create_bulletin": Access(
        "reference", SUPERVISORS, positive="a1.manager", status=201, body=lambda s: s.bulletin()
    ),
    "stats.get_bulletin": Access("object", SUPERVISORS, positive="a1.manager"),
    "stats.get_bulletin_pdf": Access("object", SUPERVISORS, positive="a1.manager"),
    "stats.list_unit_bulletins": Access("object", SUPERVISORS, positive="a1.manager"),
    "stats.create_assessment": Access(
        "reference",
        SUPERVISORS,
        positive="a1.manager",
        status=201,
        body=lambda s: s.assessment(),
    ),
    "stats.get_assessment": Access("object", SUPERVISORS, positive="a1.manager"),
    "stats.get_assessment_pdf": Access("object", SUPERVISORS, positive="a1.manager"),
    # Inspection (巡查), rectification (整改) and the case-handling area (办案区)
    "inspection.mark_key_incident": Access(
        "object",
        DECIDERS,
        positive="a1.legal",
        status=201,
        body=lambda s: {"reason": "涉未成年人"},
        own_path=lambda s: {"incident_id": s.unmarked_incident_id},
    ),
    "inspection.list_key_incidents": Access(
        "list",
        SUPERVISORS,
        positive="a1.legal",
        listed=(("", lambda s: {s.key_incident["id"]}),),
    ),
    "inspection.inspect_case": Access(
        "object",
        DECIDERS,
        positive="a1.legal",
        status=201,
        body=lambda s: {"result": "problems_found", "note": "笔录不规范"},
    ),
    "inspection.inspect_incident": Access(
        "object", DECIDERS, positive="a1.legal", status=201, body=lambda s: {"result": "ok"}
    ),
    "inspection.list_inspections": Access(
        "list", SUPERVISORS, positive="a1.legal", listed=(("", lambda s: {s.inspection_id}),)
    ),
    "inspection.list_categories": Access("caller", READERS),
    "inspection.file_problem": Access(
        "reference",
        DECIDERS,
        positive="a1.legal",
        status=201,
        body=lambda s: s.problem_body(),
    ),
    "inspection.list_problems": Access("list", READERS, listed=(("", lambda s: {s.problem_id}),)),
    "inspection.problem_report": Access(
        "reference",
        SUPERVISORS,
        positive="a1.legal",
        query=lambda s: f"?unit_id={s.unit_id}&from=2026-11-01&to=2026-11-30",
    ),
    "inspection.get_problem": Access("object", READERS),
    "inspection.submit_rectification": Access(
        "object",
        OFFICER,
        body=lambda s: {"note": "已补正"},
        own_path=lambda s: {"problem_id": s.open_problem_id},
    ),
    "inspection.review_rectification": Access(
        "object",
        DECIDERS,
        positive="a1.legal",
        body=lambda s: {"decision": "accept"},
        own_path=lambda s: {"problem_id": s.submitted_problem_id},
    ),
    "inspection.create_entry": Access(
        "reference", OFFICER, status=201, body=lambda s: s.entry_body()
    ),
    "inspection.list_entries": Access("list", READERS, listed=(("", lambda s: {s.entry_id}),)),
    "inspection.get_entry": Access("object", READERS),
    "inspection.record_exit": Access(
        "object",
        OFFICER,
        body=lambda s: {},
        own_path=lambda s: {"entry_id": s.open_entry_id},
    ),
    # Remote sessions
    "sessions.create_session": Access(
        "reference",
        OFFICER,
        status=201,
        body=lambda s: {
            "case_id": s.case_id,
            "kind": "identification",
            "scheduled_start": sessions.schedule()[0],
            "scheduled_end": sessions.schedule()[1],
            "sites": sessions.SITES,
        },
    ),
    "sessions.list_sessions": Access("object", READERS),
    "sessions.join": Access(
        "public",
        ALL,
        body=lambda s: {"code": s.session.code(s.participant_id)},
        public=True,
    ),
    "sessions.get_session": Access("object", READERS),
    "sessions.add_participant": Access(
        "object", OFFICER, status=201, body=lambda s: {"role": "witness", "name": "赵敏"}
    ),
    "sessions.issue_code": Access("object", OFFICER, status=201),
    "sessions.revoke_participant": Access("object", OFFICER),
    "sessions.start_session": Access(
        "object", OFFICER, own_path=lambda s: {"session_id": s.scheduled_meeting_id}
    ),
    "sessions.complete_session": Access(
        "object", OFFICER, own_path=lambda s: {"session_id": s.completable_interrogation_id}
    ),
    "sessions.abort_session": Access("object", OFFICER, body=lambda s: {"reason": "视频连接中断"}),
    "sessions.list_events": Access("object", READERS),
    "sessions.verify_log": Access("object", READERS),
    "sessions.add_recording": Access(
        "object",
        OFFICER,
        status=201,
        body=lambda s: {"evidence_id": s.recording_id, "full": True, "site": "jail"},
        foreign_body=lambda s: {"evidence_id": s.evidence_id, "full": True, "site": "centre"},
        own_path=lambda s: {"session_id": s.running_interrogation.id},
    ),
    "sessions.link_document": Access(
        "object",
        OFFICER,
        body=lambda s: {"document_id": s.transcript_id},
        foreign_body=lambda s: {"document_id": s.document_id},
        own_path=lambda s: {"session_id": s.running_interrogation.id},
    ),
    "sessions.give_notice": Access(
        "object",
        OFFICER,
        status=201,
        body=lambda s: {"notice": "rights", "participant_id": s.notice_participant_id},
        foreign_body=lambda s: {"notice": "rights", "participant_id": s.participant_id},
        own_path=lambda s: {"session_id": s.running_interrogation.id},
    ),
    # Identification
    "identification.create_lineup": Access(
        "object", OFFICER, status=201, body=lambda s: s.lineup_body()
    ),
    "identification.list_lineups": Access("object", OFFICER),
    "identification.list_identifiers": Access("object", OFFICER),
    "identification.record_interview": Access(
        "object",
        OFFICER,
        status=201,
        body=lambda s: identification.INTERVIEW,
        own_path=lambda s: {
            "session_id": s.running_identification.setup.id,
            "participant_id": s.running_identification.identifier["id"],
        },
    ),
    "identification.assign_lineup": Access(
        "object",
        OFFICER,
        body=lambda s: {"lineup_id": s.interviewed[1]},
        foreign_body=lambda s: {"lineup_id": str(uuid.uuid4())},
        own_path=lambda s: {
            "session_id": s.interviewed[0].setup.id,
            "participant_id": s.interviewed[0].identifier["id"],
        },
    ),
    "identification.generate_records": Access(
        "object", OFFICER, status=201, own_path=lambda s: {"session_id": s.ended_identification_id}
    ),
    "identification.list_records": Access("object", OFFICER),
    "identification.user_progress": Access("object", OFFICER),
    # Participants who are not users, with their session's token
    "sessions.participant_session": Access(
        "participant", frozenset(), participant=lambda s: s.waiting_identifier
    ),
    "identification.identifier_state": Access(
        "participant", frozenset(), participant=lambda s: s.waiting_identifier
    ),
    "identification.acknowledge_instructions": Access(
        "participant",
        frozenset(),
        body=lambda s: {"acknowledged": True},
        participant=lambda s: s.instructed_identifier,
    ),
    "identification.show_members": Access(
        "participant", frozenset(), participant=lambda s: s.acknowledged_identifier
    ),
    "identification.member_image": Access(
        "participant", frozenset(), participant=lambda s: s.photo_identifier
    ),
    "identification.respond": Access(
        "participant",
        frozenset(),
        body=lambda s: {"position": 1, "answer": "no"},
        participant=lambda s: s.sequential_identifier,
    ),
    "identification.choose": Access(
        "participant",
        frozenset(),
        body=lambda s: {"outcome": "dont_know"},
        participant=lambda s: s.shown_identifier,
    ),
    "identification.state_confidence": Access(
        "participant",
        frozenset(),
        body=lambda s: {"statement": "我不确定。", "scale": 20},
        participant=lambda s: s.chosen_identifier,
    ),
    "identification.read_record": Access(
        "participant", frozenset(), participant=lambda s: s.waiting_identifier
    ),
    "identification.sign_record": Access(
        "participant",
        frozenset(),
        status=201,
        body=lambda s: s.signing_identifier[1],
        participant=lambda s: s.signing_identifier[0],
    ),
    "identification.progress": Access(
        "participant", frozenset(), participant=lambda s: s.administrator
    ),
}


# The route table


@dataclass(frozen=True)
class Operation:
    endpoint: str
    method: str
    rule: str
    params: tuple[str, ...] = field(default=())

    @property
    def access(self) -> Access:
        return ACCESS[self.endpoint]

    def __str__(self) -> str:
        return f"{self.method} {self.rule} ({self.endpoint})"


def api_operations(app: Flask) -> list[Operation]:
    """Every method of every rule under /api/v1, as the application routes them."""
    operations = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(API_PREFIX):
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            operations.append(Operation(rule.endpoint, method, rule.rule, tuple(rule.arguments)))
    return sorted(operations, key=lambda op: (op.rule, op.method))


def operation(app: Flask, endpoint: str) -> Operation:
    matches = [op for op in api_operations(app) if op.endpoint == endpoint]
    assert len(matches) == 1, f"{endpoint}: {len(matches)} routes"
    return matches[0]


def path_for(app: Flask, op: Operation, site: Site, values: dict[str, str] | None = None) -> str:
    values = {name: site.param(name) for name in op.params} | (values or {})
    return app.url_map.bind("localhost").build(op.endpoint, values, method=op.method)


def foreign_paths(op: Operation, foreign: Site, home: Site) -> list[dict[str, str]]:
    """Path parameters naming the foreign site's objects: all of them, and where a
    route takes several, each one among the caller's own objects (a foreign person
    in the caller's own case)."""
    combinations = [{name: foreign.param(name) for name in op.params}]
    if len(op.params) > 1:
        for name in op.params:
            mixed = {other: home.param(other) for other in op.params}
            combinations.append(mixed | {name: foreign.param(name)})
    return combinations


def send(
    app: Flask,
    api: Api,
    op: Operation,
    site: Site,
    user: OrgUser | None,
    *,
    foreign: bool = False,
    headers: dict[str, str] | None = None,
    path: dict[str, str] | None = None,
) -> Any:
    """Call ``op`` on ``site``'s objects as ``user`` (``None``: without a token).

    The body and headers are those the table gives for an allowed caller; with
    ``foreign`` the body that names the site's objects from outside. ``path``
    overrides path parameters.
    """
    access = op.access
    body = access.foreign(site) if foreign else (access.body(site) if access.body else None)
    all_headers = {**(access.headers(site) if access.headers else {}), **(headers or {})}
    if access.fresh_session and user is not None:
        token = api.login(user)["access_token"]
        all_headers["Authorization"] = f"Bearer {token}"
        user = None
    if access.participant is not None and user is not None:
        all_headers = {"Authorization": access.participant(site), **(headers or {})}
        user = None
    if access.public:
        user = None
    kwargs: dict[str, Any] = {} if body is None else {"json": body}
    if access.data is not None:
        kwargs["data"] = access.data(site)
    if path is None and not foreign and access.own_path is not None:
        path = access.own_path(site)
    query = access.query(site) if callable(access.query) else access.query
    url = path_for(app, op, site, path) + query
    return api.request(op.method, url, user, headers=all_headers, **kwargs)


def listings(
    app: Flask, api: Api, op: Operation, site: Site, user: OrgUser
) -> list[tuple[str, set[str], set[str]]]:
    """For each filter of a list operation: the query, the ids of ``site``'s objects it
    would list, and the ids it returns to ``user`` (all pages)."""
    results = []
    for template, listed in op.access.listed:
        expected = listed(site)
        base = path_for(app, op, site) + template.format(s=site)
        separator = "&" if "?" in base else "?"
        ids: set[str] = set()
        url = base
        while True:
            response = api.get(url, user)
            assert response.status_code == 200, (url, response.get_json())
            data = response.get_json()
            items = data["items"] if isinstance(data, dict) else data
            ids |= {item["id"] for item in items}
            cursor = data.get("next_cursor") if isinstance(data, dict) else None
            if not cursor or data.get("more") is False:  # a feed always has a cursor
                break
            url = f"{base}{separator}cursor={cursor}"
        results.append((template, expected, ids))
    return results


def role_of(user_key: str) -> str:
    return user_key.partition(".")[2]


# Database state of the private organisation


def org_state(app: Flask, org: Org) -> dict[str, list[Any]]:
    """Every domain row of the organisation (not sessions or audit), to compare."""
    tables = db.metadata.tables
    root = org.unit("city").id
    with app.app_context():
        units_t = tables["units"]
        root_path = db.session.scalar(sa.select(units_t.c.path).where(units_t.c.id == root))
        units = sa.select(units_t.c.id).where(units_t.c.path.startswith(root_path))
        users = sa.select(tables["users"].c.id).where(tables["users"].c.unit_id.in_(units))
        cases = sa.select(tables["cases"].c.id).where(tables["cases"].c.unit_id.in_(units))
        scopes = {
            "units": units_t.c.id.in_(units),
            "users": tables["users"].c.unit_id.in_(units),
            "user_roles": tables["user_roles"].c.user_id.in_(users),
            "incidents": tables["incidents"].c.unit_id.in_(units),
            "cases": tables["cases"].c.unit_id.in_(units),
            "case_number_counters": tables["case_number_counters"].c.unit_id.in_(units),
            "case_persons": tables["case_persons"].c.case_id.in_(cases),
            "case_events": tables["case_events"].c.case_id.in_(cases),
            "step_requests": tables["step_requests"].c.case_id.in_(cases),
            "approvals": tables["approvals"].c.case_id.in_(cases),
            "devices": tables["devices"].c.unit_id.in_(units),
            "evidence": tables["evidence"].c.case_id.in_(cases),
            "custody_events": tables["custody_events"].c.evidence_id.in_(
                sa.select(tables["evidence"].c.id).where(tables["evidence"].c.case_id.in_(cases))
            ),
            "case_facts": tables["case_facts"].c.case_id.in_(cases),
            "warnings": tables["warnings"].c.case_id.in_(cases),
            "bulletins": tables["bulletins"].c.unit_id.in_(units),
            "assessments": tables["assessments"].c.unit_id.in_(units),
            "problems": tables["problems"].c.unit_id.in_(units),
            "inspections": tables["inspections"].c.unit_id.in_(units),
            "key_incidents": tables["key_incidents"].c.unit_id.in_(units),
            "handling_area_entries": tables["handling_area_entries"].c.unit_id.in_(units),
            "evidence_disposals": tables["evidence_disposals"].c.evidence_id.in_(
                sa.select(tables["evidence"].c.id).where(tables["evidence"].c.case_id.in_(cases))
            ),
            "documents": tables["documents"].c.case_id.in_(cases),
            "document_signatures": tables["document_signatures"].c.document_id.in_(
                sa.select(tables["documents"].c.id).where(tables["documents"].c.case_id.in_(cases))
            ),
        }
        state = {}
        for name, where in scopes.items():
            table = tables[name]
            query = sa.select(table).where(where).order_by(*table.primary_key.columns)
            state[name] = [tuple(row) for row in db.session.execute(query)]
        db.session.rollback()
    return state


def changes(before: dict[str, list[Any]], after: dict[str, list[Any]]) -> list[str]:
    return [
        f"{name}: {len(before[name])} -> {len(after[name])} rows, changed: "
        f"{sorted(set(map(str, after[name])) ^ set(map(str, before[name])))[:4]}"
        for name in before
        if before[name] != after[name]
    ]


# Fixtures

_PRIVATE: dict[int, tuple[Org, Api]] = {}


def private_org(app: Flask) -> tuple[Org, Api]:
    """An organisation of this file and test_audit.py only, and a client whose tokens
    last for the run (one sign-in per user).

    Its thirty users share one real Argon2id hash of ``PASSWORD``, made by the
    service's own hasher: hashing thirty times would only cost time.
    """
    if id(app) not in _PRIVATE:
        digest = auth_service.hash_password(PASSWORD)
        with (
            app.app_context(),
            mock.patch.object(auth_service, "hash_password", lambda _password: digest),
        ):
            org = build_org("m" + uuid.uuid4().hex[:6])
        _PRIVATE[id(app)] = (org, Api(app.test_client()))
    return _PRIVATE[id(app)]


@pytest.fixture(scope="module")
def org(app: Flask) -> Org:
    return private_org(app)[0]


@pytest.fixture(scope="module")
def mapi(app: Flask) -> Api:
    return private_org(app)[1]


@pytest.fixture(scope="module")
def sites(mapi: Api, org: Org) -> dict[str, Site]:
    """Fully built sites: a1 (home of the callers), a2 and b1 (foreign)."""
    return {name: Site(mapi, org, name).build_all() for name in ("a1", "a2", "b1")}


@pytest.fixture
def fresh_site(mapi: Api, org: Org) -> Site:
    """Station a1 with objects of its own, made on first use (for calls that change them)."""
    return Site(mapi, org, "a1")


# The table covers the route table


def test_every_api_route_is_in_the_table(app: Flask) -> None:
    operations = api_operations(app)
    endpoints = [op.endpoint for op in operations]
    missing = sorted(set(endpoints) - ACCESS.keys())
    assert not missing, f"routes without an entry in ACCESS (add them): {missing}"
    stale = sorted(ACCESS.keys() - set(endpoints))
    assert not stale, f"ACCESS names routes that no longer exist: {stale}"
    several = sorted({e for e in endpoints if endpoints.count(e) > 1})
    assert not several, f"one entry per endpoint and method; key these by method too: {several}"
    for op in operations:
        access, view = op.access, app.view_functions[op.endpoint]
        unknown = set(op.params) - PATH_PARAMS.keys()
        assert not unknown, f"{op}: map path parameters {unknown} in PATH_PARAMS"
        participant = access.scope == "participant"
        assert participant == bool(getattr(view, "participant", False)), f"{op}: participant?"
        assert participant == (access.participant is not None), op
        if participant:
            assert not access.roles, f"{op}: no user token reaches a participant route"
        else:
            assert (access.scope == "object") == bool(op.params), op
        assert access.public == bool(getattr(view, "public", False)), f"{op}: public?"
        assert access.public == (access.scope == "public"), op
        doc = getattr(view, "_apidoc", {})
        takes_json = any(
            p.get("in") == "json" for p in doc.get("arguments", {}).get("parameters", [])
        )
        assert takes_json == (access.body is not None), f"{op}: JSON body in ACCESS?"
        declared = doc.get("access", {}).get("roles")
        if declared is not None:
            assert {ROLE_VALUES[r] for r in access.roles} == {str(r) for r in declared}, op
        if access.scope == "list":
            assert op.method == "GET" and access.listed, op
        assert participant or role_of(access.positive) in access.roles, op


# Z1: objects of foreign units


CALLERS = [(f"a1.{role}", foreign) for foreign in ("b1", "a2") for role in ROLES] + [
    (f"a.{role}", "b1") for role in ROLES if role != "officer"
]


@pytest.mark.parametrize(("caller", "foreign"), CALLERS, ids=[f"{c}-vs-{f}" for c, f in CALLERS])
def test_foreign_objects_are_refused(
    app: Flask, mapi: Api, org: Org, sites: dict[str, Site], caller: str, foreign: str
) -> None:
    user, site, role = org.user(caller), sites[foreign], role_of(caller)
    failures: list[str] = []
    before = org_state(app, org)
    for op in api_operations(app):
        access = op.access
        if access.scope in ("caller", "public", "participant"):
            continue
        if access.scope == "list":
            owner = site.counterpart(access.positive)
            for query, expected_ids, ids in listings(app, mapi, op, site, owner):
                assert expected_ids <= ids, f"{op}{query}: {owner.username} should list them"
            if role not in access.roles:
                response = mapi.get(path_for(app, op, site), user)
                if response.status_code != 403:
                    failures.append(f"{op}: {response.status_code}, expected 403")
                continue
            for query, expected_ids, ids in listings(app, mapi, op, site, user):
                if ids & expected_ids:
                    failures.append(f"{op}{query}: lists {ids & expected_ids}")
            continue
        for values in foreign_paths(op, site, sites["a1"]):
            response = send(app, mapi, op, site, user, foreign=True, path=values)
            expected = {access.refused} if role in access.roles else {403, 404}
            if response.status_code not in expected:
                failures.append(f"{op} {values}: {response.status_code} {response.get_json()}")
            elif response.mimetype != PROBLEM_JSON:
                failures.append(f"{op}: {response.mimetype}, expected problem details")
            after = org_state(app, org)
            if after != before:
                failures.append(f"{op} changed the database: {changes(before, after)}")
                before = after
    assert not failures, f"{caller} on {foreign}'s objects:\n" + "\n".join(failures)


def test_client_ids_of_foreign_objects_are_refused(
    app: Flask, mapi: Api, org: Org, sites: dict[str, Site], fresh_site: Site
) -> None:
    """A client-chosen id that belongs to another unit's object gets 409, and changes nothing."""
    foreign, officer = sites["b1"], org.user("a1.officer")
    attempts = [
        ("a1.officer", "/api/v1/incidents", incident_body(id=foreign.incident_id)),
        (
            "a1.officer",
            f"/api/v1/cases/{fresh_site.case_id}/persons",
            {**PERSON_BODY, "id": foreign.person_id},
        ),
        (
            "a1.officer",
            f"/api/v1/incidents/{fresh_site.incident_id}/accept",
            {"case_type": "administrative", "title": "受案测试", "case_id": foreign.case_id},
        ),
        (
            "a.admin",
            "/api/v1/units",
            {
                "id": foreign.unit_id,
                "code": _unique("U"),
                "name": "新建派出所",
                "tier": "station",
                "parent_id": fresh_site.parent_unit_id,
            },
        ),
    ]
    before = org_state(app, org)
    for caller, path, body in attempts:
        response = mapi.post(path, org.user(caller), json=body)
        assert response.status_code == 409, (path, response.status_code, response.get_json())
        assert response.mimetype == PROBLEM_JSON
        assert org_state(app, org) == before, path
    assert mapi.get(f"/api/v1/incidents/{foreign.incident_id}", officer).status_code == 404


# Z2: function-level rules on the caller's own objects


USER_ROUTES = sorted(e for e, a in ACCESS.items() if a.scope not in ("public", "participant"))


@pytest.mark.parametrize("endpoint", USER_ROUTES)
def test_roles_outside_the_table_get_403(
    app: Flask, mapi: Api, org: Org, sites: dict[str, Site], endpoint: str
) -> None:
    """On its own unit's objects a role the table does not allow gets 403; allowed roles read."""
    op, site = operation(app, endpoint), sites["a1"]
    access = op.access
    before = org_state(app, org)
    for role in ROLES:
        user = org.user(f"a1.{role}")
        if role in access.roles:
            if op.method != "GET":
                continue  # changes things: the positive test makes one such call
            response = send(app, mapi, op, site, user)
            assert response.status_code == 200, (role, response.get_json())
            before = org_state(app, org)  # a read may leave a record (a custody event)
            continue
        response = send(app, mapi, op, site, user)
        assert response.status_code == 403, (role, response.status_code, response.get_json())
        assert response.mimetype == PROBLEM_JSON
        assert org_state(app, org) == before, f"{role}: a refused call changed the database"


@pytest.mark.parametrize("endpoint", sorted(ACCESS))
def test_the_right_role_reaches_its_own_units_object(
    app: Flask, mapi: Api, org: Org, fresh_site: Site, endpoint: str
) -> None:
    op = operation(app, endpoint)
    access = op.access
    user = org.user(access.positive)
    response = send(app, mapi, op, fresh_site, user)
    assert response.status_code == access.status, response.get_json(silent=True)
    data = response.get_json(silent=True)
    if access.scope == "list":
        for query, expected_ids, ids in listings(app, mapi, op, fresh_site, user):
            assert expected_ids <= ids, query
    elif (
        isinstance(data, dict)
        and op.method == "GET"
        and len(op.params) == 1
        and endpoint not in NOT_THE_OBJECT
    ):
        assert data.get("id", data.get("document_id")) == fresh_site.param(op.params[0])
    if endpoint == "org.me":
        assert data["id"] == str(user.id)
    if endpoint == "cases.reveal_person":
        assert data["masked"] is False
        assert data["id_number"] == PERSON_BODY["id_number"]


NOT_THE_OBJECT = {
    "supervision.case_supervision",  # the case's facts, not the case
    "sessions.list_sessions",  # the case's sessions
    "sessions.list_events",  # the session's log
    "sessions.verify_log",
    "identification.user_progress",  # each identifier's step
}
"""Reads of one object's path that answer with something other than the object itself."""


def test_policy_in_the_table(app: Flask) -> None:
    """The table encodes the function-level rules of checklist Z2 (the tests above hold the
    application to the table)."""
    for op in api_operations(app):
        access = op.access
        touches_cases = op.rule.startswith(("/api/v1/cases", "/api/v1/incidents"))
        if op.rule.startswith("/api/v1/approvals"):
            # Only legal officers and leaders review and approve.
            assert access.roles == DECIDERS, op
        if op.rule.startswith("/api/v1/users") or (
            op.rule.startswith("/api/v1/units") and op.method != "GET"
        ):
            # Only administrators administer.
            assert access.roles == ADMIN, op
        if touches_cases or op.rule.startswith("/api/v1/approvals"):
            # Administrators do not read case data.
            assert "admin" not in access.roles, op
        # Case managers read but do not change; they enrol their own devices like anyone,
        # and the centre records the custody of evidence it keeps (入库, 调取).
        own_things = op.endpoint in (
            "devices.enroll",
            "evidence.add_custody",
            "supervision.acknowledge_warning",  # the centre acknowledges what reaches it
            "stats.create_bulletin",  # and publishes bulletins and assessments
            "stats.create_assessment",
        )
        if (
            "manager" in access.roles
            and access.scope not in ("caller", "public")
            and not own_things
        ):
            assert op.method == "GET", op
        if touches_cases and op.method == "GET":
            assert "manager" in access.roles, op


def test_only_the_role_of_the_stage_decides(
    app: Flask, mapi: Api, org: Org, fresh_site: Site
) -> None:
    approval = fresh_site.approval
    case_id = approval["case_id"]
    path = f"/api/v1/approvals/{approval['id']}/decision"
    body = {"decision": "approve", "comment": "同意"}
    before = org_state(app, org)
    for caller in ("a1.officer", "a1.manager", "a1.admin", "a1.leader", "a.leader", "a.manager"):
        response = mapi.post(path, org.user(caller), json=body)
        assert response.status_code == 403, (caller, response.get_json())
    assert org_state(app, org) == before
    response = mapi.post(path, org.user("a1.legal"), json=body)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["outcome"] == "pending"
    second = mapi.pending_approval(case_id, org.user("a1.leader"))
    assert second["role"] == "leader" and second["stage"] == 1
    path = f"/api/v1/approvals/{second['id']}/decision"
    before = org_state(app, org)
    for caller in ("a1.legal", "a.legal", "a1.officer", "a1.admin"):
        response = mapi.post(path, org.user(caller), json=body)
        assert response.status_code == 403, (caller, response.get_json())
    assert org_state(app, org) == before
    response = mapi.post(path, org.user("a.leader"), json=body)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["outcome"] == "applied"
    assert response.get_json()["case"]["status"] == "decided"


# Authentication


def test_every_non_public_route_needs_a_token(
    app: Flask, mapi: Api, org: Org, sites: dict[str, Site]
) -> None:
    site = sites["a1"]
    before = org_state(app, org)
    checked = 0
    for op in api_operations(app):
        if op.access.public:
            continue
        for headers in ({}, {"Authorization": "Bearer not.a.token"}, {"Authorization": "Basic x"}):
            response = send(app, mapi, op, site, None, headers=headers)
            assert response.status_code == 401, (str(op), headers, response.get_json())
            assert response.mimetype == PROBLEM_JSON
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
        checked += 1
    assert checked == len([op for op in api_operations(app) if not op.access.public]) > 20
    assert org_state(app, org) == before


def test_participant_and_user_tokens_reach_only_their_own_routes(
    app: Flask, mapi: Api, org: Org, sites: dict[str, Site]
) -> None:
    """A remote-session participant's token reaches only participant routes, and no
    user's token reaches those: each gets 401 elsewhere, and nothing changes."""
    site, officer = sites["a1"], org.user("a1.officer")
    participant_token = site.waiting_identifier
    user_token = f"Bearer {mapi.token(officer)}"
    before = org_state(app, org)
    crossed = 0
    for op in api_operations(app):
        if op.access.public:
            continue
        if op.access.scope == "participant":
            response = send(app, mapi, op, site, officer, headers={"Authorization": user_token})
        else:
            response = send(app, mapi, op, site, None, headers={"Authorization": participant_token})
        assert response.status_code == 401, (str(op), response.get_json())
        assert response.mimetype == PROBLEM_JSON
        crossed += 1
    assert crossed > 100
    assert org_state(app, org) == before
