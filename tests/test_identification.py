"""Double-blind identification (辨认) through the API: lineups and their minimums, the
procedure in its order, each identifier alone, the blind administrator, the AR art. 104
and repeat-identification grounds, the record written from the hash-chained log, and
an aborted session's log."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from backend.extensions import db
from backend.identification import service as identification
from backend.sessions import service as sessions
from backend.sessions.models import RemoteSession, SessionEvent
from backend.supervision.models import CaseFact
from shared.identification import load_rules

from conftest import Api, Org
from support_documents import enroll, jpeg_bytes
from support_evidence import EvidenceMaker, enrol, mp4_bytes
from support_evidence import png_bytes as photo_bytes
from support_identification import (
    INTERVIEW,
    ME,
    Identification,
    extra_officer,
    lineup_body,
    members,
    prepared,
)
from support_sessions import new_session
from support_supervision import open_warnings

PROBLEM = "application/problem+json"


def slug(response: Any) -> str:
    assert response.mimetype == PROBLEM, response.get_data(as_text=True)
    return response.get_json()["type"].rpartition(":")[2]


@pytest.fixture
def administrator(app: Flask, world: Org):
    return extra_officer(app, world)


def started(api: Api, world: Org, **kw: Any) -> Identification:
    ident = prepared(api, world, **kw)
    ident.setup.start()
    return ident


def session_row(session_id: str) -> RemoteSession:
    return db.session.get_one(RemoteSession, uuid.UUID(session_id))


# The full procedure


def test_sequential_procedure_from_interview_to_signed_record(app, api, world):
    ident = started(api, world, presentation="sequential")
    lineup = ident.lineup("live_person")
    target_id = next(m["id"] for m in lineup["members"] if m["is_target"])

    waiting = ident.me("GET").get_json()
    assert waiting["step"] == "waiting" and waiting["instructions"] is None
    assert ident.interview().status_code == 201
    assert ident.me("GET").get_json()["step"] == "waiting"
    assert ident.assign(lineup["id"]).status_code == 200

    state = ident.me("GET").get_json()
    assert state["step"] == "instructions"
    assert state["presentation"] == "sequential" and state["member_count"] == 7
    assert "可能在其中，也可能不在其中" in state["instructions"]["zh"]
    assert "may or may not" in state["instructions"]["en"]
    # Nothing is shown before the instructions are acknowledged.
    assert slug(ident.me("GET", "/members")) == "identification-order"
    refused = ident.me("POST", "/instructions", json={"acknowledged": False})
    assert refused.status_code == 422
    assert ident.me("POST", "/instructions", json={"acknowledged": True}).status_code == 200

    # Sequential: one member at a time, each answered before the next is shown.
    first = ident.me("GET", "/members").get_json()
    assert first == {"members": [{"position": 1, "has_image": False, "label": "1"}], "remaining": 7}
    assert ident.me("GET", "/members").get_json() == first
    skipped = ident.me("POST", "/responses", json={"position": 2, "answer": "no"})
    assert slug(skipped) == "identification-order"
    early = ident.me("POST", "/choice", json={"outcome": "not_present"})
    assert slug(early) == "identification-order"
    assert ident.me("POST", "/responses", json={"position": 1, "answer": "no"}).status_code == 200
    unseen = ident.me("POST", "/responses", json={"position": 2, "answer": "no"})
    assert slug(unseen) == "identification-order"
    for position in range(2, 8):
        shown = ident.me("GET", "/members").get_json()
        assert shown["members"][0]["position"] == position
        assert shown["remaining"] == 8 - position
        answer = "yes" if position == 4 else "no"
        reply = ident.me("POST", "/responses", json={"position": position, "answer": answer})
        assert reply.status_code == 200
    assert ident.me("GET").get_json()["step"] == "choice"
    assert ident.me("GET", "/members").get_json() == {"members": [], "remaining": 0}
    not_yes = ident.me("POST", "/choice", json={"outcome": "selected", "position": 3})
    assert not_yes.status_code == 422
    chosen = ident.me("POST", "/choice", json={"outcome": "selected", "position": 4})
    assert chosen.get_json()["step"] == "confidence"

    # Between the choice and the confidence statement nothing else answers.
    assert slug(ident.me("GET", "/members")) == "identification-order"
    again = ident.me("POST", "/choice", json={"outcome": "dont_know"})
    assert slug(again) == "identification-order"
    assert slug(ident.me("POST", "/responses", json={"position": 1, "answer": "no"})) == (
        "identification-order"
    )
    confident = ident.me(
        "POST", "/confidence", json={"statement": "我很确定就是他，左眉的疤。", "scale": 90}
    )
    assert confident.get_json()["step"] == "done"

    complete = ident.setup.post("/complete")
    assert complete.status_code == 200, complete.get_json()

    records = ident.setup.post("/record")
    assert records.status_code == 201, records.get_json()
    [record] = records.get_json()
    assert record["kind"] == "identification_record" and record["status"] == "finalized"
    header = record["content"]["header"]
    sections = {s["key"]: s["text"] for s in record["content"]["sections"]}
    verified = api.get(ident.setup.url("/log/verify"), ident.setup.officer).get_json()
    assert verified["ok"] and header["log_head"] == verified["head"]
    assert header["identifier"] == "王芳" and header["witness"] == "赵敏"
    assert header["presentation"] == "逐一出示"
    with app.app_context():
        events = sessions.events(session_row(ident.setup.id))
        assigned = next(e for e in events if e.kind == "lineup_assigned")
        target_position = next(
            p["position"] for p in assigned.payload["positions"] if p["member_id"] == target_id
        )
        kinds = [e.kind for e in events]
    assert kinds.index("lineup_created") < kinds.index("lineup_assigned")
    assert kinds.index("identification_interview") < kinds.index("lineup_assigned")
    assert kinds.index("instructions_acknowledged") < kinds.index("members_shown")
    assert kinds.index("choice_made") + 1 == kinds.index("confidence_stated")
    assert f"第{target_position}号：李强，男，32岁（嫌疑对象）" in sections["composition"]
    assert REASON_FRAGMENT in sections["basis"] and "寸头" in sections["basis"]
    assert INTERVIEW["description"] in sections["interview"]
    assert "可能在其中，也可能不在其中" in sections["instructions"]
    assert "“我很确定就是他，左眉的疤。”" in sections["result"] and "90" in sections["result"]
    assert sections["procedure"].count("反应时间") == 8 + 1  # 7 answers, choice, confidence
    assert verified["head"] in sections["log"]

    # The identifier reads the record and signs it on an officer's tablet.
    view = ident.me("GET", "/record").get_json()
    assert view["available"] and view["document_id"] == record["id"]
    assert view["content_sha256"] == record["content_sha256"]
    assert any(verified["head"] in line for line in view["lines"])
    assert ident.me("GET").get_json()["step"] == "record"
    tablet = enroll(api, ident.setup.officer)
    assert tablet.sign(record, "officer", "a1 officer", user=ident.setup.officer).status_code == 201
    second = tablet.sign(record, "second_officer", "a1 officer2", user=ident.setup.second)
    assert second.status_code == 201
    assert tablet.sign(record, "witness", "赵敏").status_code == 201
    party = tablet.body(record, "party", "王芳")
    del party["signer_role"], party["signer_name"]
    signed = ident.me("POST", "/record/signature", json=party)
    assert signed.status_code == 201, signed.get_json()
    assert signed.get_json()["role"] == "party"
    assert ident.me("GET").get_json()["step"] == "done"
    document = api.get(f"/api/v1/documents/{record['id']}", ident.setup.officer).get_json()
    assert document["status"] == "signed"


REASON_FRAGMENT = "监控录像显示李强案发时在现场"


def photo_maker(api: Api, ident: Identification) -> EvidenceMaker:
    officer = ident.setup.officer
    return EvidenceMaker(api, officer, enrol(api, officer))


def test_simultaneous_photo_lineup_shows_all_members_and_their_photos(app, api, world):
    ident = started(api, world, presentation="simultaneous")
    maker = photo_maker(api, ident)
    images = [photo_bytes(seed=n) for n in range(10)]
    photos = [maker.add(ident.case_id, data, f"p{n}.png")["id"] for n, data in enumerate(images)]
    target = {"person_id": ident.suspect["id"], "description": "李强近照"}
    body = lineup_body("person_photo", members("person_photo", target, photos=photos))
    lineup = ident.setup.post("/lineups", json=body).get_json()
    by_member = {m["id"]: images[photos.index(m["evidence_id"])] for m in lineup["members"]}

    assert ident.interview().status_code == 201
    assert ident.assign(lineup["id"]).status_code == 200
    assert ident.me("GET", "/members/1/image").status_code == 409
    ident.me("POST", "/instructions", json={"acknowledged": True})
    shown = ident.me("GET", "/members").get_json()
    assert shown["remaining"] == 0
    assert shown["members"] == [
        {"position": n, "has_image": True, "label": str(n)} for n in range(1, 11)
    ]
    assert ident.me("GET").get_json()["step"] == "choice"
    sequential_only = ident.me("POST", "/responses", json={"position": 1, "answer": "yes"})
    assert slug(sequential_only) == "presentation-mode"
    with app.app_context():
        track = db.session.scalar(
            sa.select(identification.Track).where(
                identification.Track.participant_id == uuid.UUID(ident.identifier["id"])
            )
        )
        order = list(track.positions)
    for position in (1, 10):
        image = ident.me("GET", f"/members/{position}/image")
        assert image.status_code == 200 and image.mimetype == "image/png"
        assert image.get_data() == by_member[order[position - 1]]
        assert "filename" not in image.headers.get("Content-Disposition", "")
    assert ident.me("GET", "/members/11/image").status_code == 404
    chosen = ident.me("POST", "/choice", json={"outcome": "selected", "position": 10})
    assert chosen.status_code == 200
    assert ident.me("GET", "/members/10/image").status_code == 409


def test_member_photos_are_custody_links(app, api, world):
    ident = started(api, world, presentation="simultaneous")
    maker = photo_maker(api, ident)
    photos = [maker.add(ident.case_id, photo_bytes(seed=n))["id"] for n in range(10)]
    target = {"description": "被盗手机照片"}
    body = lineup_body("object_photo", members("object_photo", target, photos=photos))
    lineup = ident.setup.post("/lineups", json=body)
    assert lineup.status_code == 201, lineup.get_json()
    ident.interview()
    ident.assign(lineup.get_json()["id"])
    ident.me("POST", "/instructions", json={"acknowledged": True})
    ident.me("GET", "/members")
    for position in range(1, 11):
        assert ident.me("GET", f"/members/{position}/image").status_code == 200
    for evidence_id in photos:
        custody = api.get(f"/api/v1/evidence/{evidence_id}/custody", ident.setup.officer)
        viewed = [c for c in custody.get_json() if c["event"] == "viewed"]
        assert len(viewed) == 1 and "辨认" in viewed[0]["purpose"]


def test_the_photos_of_a_lineup_share_one_format(api, world):
    ident = prepared(api, world)
    maker = photo_maker(api, ident)
    photos = [maker.add(ident.case_id, photo_bytes(seed=n))["id"] for n in range(9)]
    odd = maker.add(ident.case_id, jpeg_bytes(), "suspect.jpg")["id"]
    target = {"person_id": ident.suspect["id"], "description": "李强近照"}
    rows = members("person_photo", target, photos=[odd, *photos])
    response = ident.setup.post("/lineups", json=lineup_body("person_photo", rows))
    assert response.status_code == 422 and "image/jpeg" in response.get_json()["detail"]


def test_live_lineup_members_have_no_images(api, world):
    ident = started(api, world, presentation="simultaneous")
    lineup = ident.lineup("object", target={"description": "黑色双肩包，左侧破损"})
    ident.interview()
    ident.assign(lineup["id"])
    ident.me("POST", "/instructions", json={"acknowledged": True})
    shown = ident.me("GET", "/members").get_json()
    assert len(shown["members"]) == 5 and not any(m["has_image"] for m in shown["members"])
    assert ident.me("GET", "/members/1/image").status_code == 404


# Lineups: minimums, one target, reasons recorded first


@pytest.mark.parametrize("kind", sorted(load_rules().kinds))
def test_each_kind_needs_its_minimum_of_members(api, world, kind):
    ident = prepared(api, world)
    minimum = load_rules().kinds[kind].minimum
    spec = load_rules().kinds[kind]
    photos = None
    if spec.photo:
        maker = photo_maker(api, ident)
        photos = [maker.add(ident.case_id, photo_bytes(seed=n))["id"] for n in range(minimum)]
    target = (
        {"person_id": ident.suspect["id"], "description": "李强"}
        if spec.person
        else {"description": "涉案物品"}
    )
    short = members(kind, target, count=minimum - 1, photos=photos)
    refused = ident.setup.post("/lineups", json=lineup_body(kind, short))
    assert slug(refused) == "lineup-too-small"
    problem = refused.get_json()
    assert problem["minimum"] == minimum
    assert (problem["law"], problem["article"]) == ("CR", "260")
    assert str(minimum) in problem["detail"]
    enough = members(kind, target, count=minimum, photos=photos)
    assert ident.setup.post("/lineups", json=lineup_body(kind, enough)).status_code == 201


def test_a_lineup_has_exactly_one_target_and_states_its_reasons(api, world):
    ident = prepared(api, world)
    target = {"person_id": ident.suspect["id"], "description": "李强"}
    good = members("live_person", target)
    two = [*good[:-1], {**good[-1], "is_target": True}]
    none = [{**m, "is_target": False, "person_id": None} for m in good]
    for wrong in (two, none):
        response = ident.setup.post("/lineups", json=lineup_body("live_person", wrong))
        assert response.status_code == 422
    for field in ("suspicion_reason", "filler_criteria"):
        missing = lineup_body("live_person", good)
        del missing[field]
        assert ident.setup.post("/lineups", json=missing).status_code == 422
        blank = lineup_body("live_person", good, **{field: "   "})
        assert ident.setup.post("/lineups", json=blank).status_code == 422
    no_person = [{"is_target": True, "description": "李强"}, *good[1:]]
    assert (
        ident.setup.post("/lineups", json=lineup_body("live_person", no_person)).status_code == 422
    )
    victim_target = [{**good[0], "person_id": ident.victim["id"]}, *good[1:]]
    response = ident.setup.post("/lineups", json=lineup_body("live_person", victim_target))
    assert response.status_code == 422
    same_twice = [*good[:-1], {**good[1]}]
    assert (
        ident.setup.post("/lineups", json=lineup_body("live_person", same_twice)).status_code == 422
    )
    photo_in_live = [{**good[0], "evidence_id": str(uuid.uuid4())}, *good[1:]]
    response = ident.setup.post("/lineups", json=lineup_body("live_person", photo_in_live))
    assert response.status_code == 422
    assert ident.setup.post("/lineups", json=lineup_body("live_person", good)).status_code == 201


def test_only_presiding_investigators_build_and_read_lineups(app, api, world, administrator):
    ident = prepared(api, world, administrator=administrator)
    body = lineup_body(
        "live_person",
        members("live_person", {"person_id": ident.suspect["id"], "description": "李强"}),
    )
    assert ident.setup.post("/lineups", administrator, json=body).status_code == 403
    assert ident.setup.post("/lineups", world.user("a1.leader"), json=body).status_code == 403
    assert ident.setup.post("/lineups", world.user("b1.officer"), json=body).status_code == 404
    assert ident.setup.post("/lineups", json=body).status_code == 201
    for user in (administrator, world.user("a1.manager")):
        assert api.get(ident.setup.url("/lineups"), user).status_code == 403
    assert api.get(ident.setup.url("/lineups"), world.user("b1.officer")).status_code == 404
    listed = api.get(ident.setup.url("/lineups"), ident.setup.second).get_json()
    assert [m["is_target"] for m in listed[0]["members"]].count(True) == 1


# The order of the procedure and each identifier alone


def test_interview_comes_first_and_each_step_once(api, world):
    ident = started(api, world)
    lineup = ident.lineup()
    assert slug(ident.assign(lineup["id"])) == "identification-order"
    blank = ident.interview(description=" ")
    assert blank.status_code == 422
    assert ident.interview().status_code == 201
    assert slug(ident.interview()) == "identification-order"
    assert ident.assign(lineup["id"]).status_code == 200
    assert slug(ident.assign(lineup["id"])) == "identification-order"
    acknowledged = ident.me("POST", "/instructions", json={"acknowledged": True})
    assert acknowledged.get_json()["step"] == "lineup"
    again = ident.me("POST", "/instructions", json={"acknowledged": True})
    assert slug(again) == "identification-order"


def test_nothing_happens_before_the_session_starts(api, world):
    ident = prepared(api, world)
    lineup = ident.lineup()
    assert slug(ident.interview()) == "session-state"
    assert slug(ident.assign(lineup["id"])) == "session-state"
    assert ident.me("GET").get_json()["step"] == "waiting"
    refused = ident.me("POST", "/instructions", json={"acknowledged": True})
    assert refused.status_code == 409


def test_identifiers_are_handled_one_at_a_time_and_alone(app, api, world):
    ident = prepared(api, world, presentation="simultaneous")
    other = ident.setup.add("identifier", name="孙丽", site="centre")
    ident.setup.start()
    lineup = ident.lineup()
    assert ident.interview().status_code == 201
    busy = ident.interview(other["id"])
    assert slug(busy) == "identifier-busy"
    assert ident.assign(lineup["id"]).status_code == 200
    ident.me("POST", "/instructions", json={"acknowledged": True})
    ident.me("GET", "/members")
    ident.me("POST", "/choice", json={"outcome": "selected", "position": 2})

    # The other identifier's token sees only its own (empty) procedure.
    theirs = ident.me("GET", participant_id=other["id"]).get_json()
    assert theirs["step"] == "waiting" and theirs["member_count"] == 0
    for path in ("/members", "/members/1/image"):
        assert ident.me("GET", path, participant_id=other["id"]).status_code in (404, 409)
    assert ident.me("GET", "/record", participant_id=other["id"]).get_json()["available"] is False
    choice = ident.me("POST", "/choice", participant_id=other["id"], json={"outcome": "dont_know"})
    assert choice.status_code == 409
    assert ident.me("GET").get_json()["step"] == "confidence"
    # Still busy until the first identifier's confidence is stated.
    assert slug(ident.interview(other["id"])) == "identifier-busy"
    ident.me("POST", "/confidence", json={"statement": "比较确定。", "scale": 70})
    assert ident.interview(other["id"]).status_code == 201
    assert ident.assign(lineup["id"], other["id"]).status_code == 200
    # The identifier's token cannot reach the presiding investigators' endpoints.
    token = ident.setup.headers(ident.identifier["id"])
    assert api.client.get(ident.setup.url("/lineups"), headers=token).status_code == 401
    assert api.client.get(ident.setup.url("/identifiers"), headers=token).status_code == 401
    # And a user token cannot reach the identifier's endpoints.
    assert api.get(ME, ident.setup.officer).status_code == 401


def test_positions_are_drawn_per_identifier_with_the_system_csprng(app, api, world, monkeypatch):
    drawn: list[list[str]] = []

    class Spy(identification.secrets.SystemRandom):
        def shuffle(self, x: list[Any]) -> None:  # type: ignore[override]
            super().shuffle(x)
            drawn.append(list(x))

    monkeypatch.setattr(identification.secrets, "SystemRandom", Spy)
    ident = prepared(api, world, presentation="simultaneous")
    other = ident.setup.add("identifier", name="孙丽", site="centre")
    ident.setup.start()
    lineup = ident.lineup()
    ident.run(lineup["id"])
    ident.run(lineup["id"], participant_id=other["id"])
    assert len(drawn) == 2
    with app.app_context():
        tracks = db.session.scalars(
            sa.select(identification.Track).where(
                identification.Track.session_id == uuid.UUID(ident.setup.id)
            )
        ).all()
        assert sorted(t.positions for t in tracks) == sorted(drawn)
    assert all(sorted(order) == sorted(m["id"] for m in lineup["members"]) for order in drawn)


# The blind administrator


def test_the_administrator_never_receives_the_target_or_a_position(app, api, world, administrator):
    ident = prepared(api, world, presentation="sequential", administrator=administrator)
    seen: list[str] = []

    def look() -> None:
        """Everything the administrator can ask about the session, as they would."""
        for path in (
            ident.setup.url(),
            ident.setup.url("/events"),
            ident.setup.url("/log/verify"),
            ident.setup.url("/identification/progress"),
            ident.setup.url("/lineups"),
            ident.setup.url("/identifiers"),
            ident.setup.url("/records"),
            f"/api/v1/sessions?case_id={ident.case_id}",
            ME,
            f"{ME}/progress",
            f"{ME}/members",
        ):
            response = api.get(path, administrator)
            seen.append(response.get_data(as_text=True))
        for path in ("/lineups", f"/identifiers/{ident.identifier['id']}/interview", "/record"):
            seen.append(ident.setup.post(path, administrator, json={}).get_data(as_text=True))

    look()
    ident.setup.start()
    lineup = ident.lineup()
    look()
    assert ident.interview().status_code == 201
    look()
    assert ident.assign(lineup["id"]).status_code == 200
    look()
    progress = api.get(ident.setup.url("/identification/progress"), administrator).get_json()
    assert progress == {
        "identifiers": [
            {"participant_id": ident.identifier["id"], "label": "辨认人1", "step": "instructions"}
        ]
    }
    ident.me("POST", "/instructions", json={"acknowledged": True})
    for position in range(1, 8):
        ident.me("GET", "/members")
        look()
        ident.me("POST", "/responses", json={"position": position, "answer": "no"})
    ident.me("POST", "/choice", json={"outcome": "not_present"})
    look()
    ident.me("POST", "/confidence", json={"statement": "不在里面。", "scale": 80})
    look()
    ident.setup.complete()
    look()
    assert ident.setup.post("/record").status_code == 201
    look()

    with app.app_context():
        events = sessions.events(session_row(ident.setup.id))
        positions = next(e for e in events if e.kind == "lineup_assigned").payload["positions"]
    secrets_of_the_lineup = [
        *(m["id"] for m in lineup["members"]),
        ident.suspect["id"],
        ident.suspect["name"],
        ident.id_numbers[0],
        "李强，男，32岁",
        "is_target",
        "嫌疑对象",
        '"position"',
        '"positions"',
        "member_id",
    ]
    assert len(seen) > 100 and positions
    for body in seen:
        for secret in secrets_of_the_lineup:
            assert secret not in body, (secret, body[:300])
    # The presiding investigators see what the administrator does not.
    full = api.get(ident.setup.url("/events"), ident.setup.officer).get_data(as_text=True)
    assert "is_target" in full and ident.suspect["id"] in full


def test_an_administrator_cannot_preside(api, world, administrator):
    ident = prepared(api, world, administrator=administrator)
    response = ident.setup.post(
        "/participants", json={"role": "presiding", "user_id": str(administrator.id)}
    )
    assert response.status_code == 409


def test_two_investigators_must_preside(api, world):
    setup = new_session(api, world, "identification", presiding=False)
    setup.add("presiding", user_id=str(setup.officer.id), site="centre")
    setup.add("identifier", name="王芳", site="centre")
    assert setup.post("/start").status_code == 422
    setup.add("presiding", user_id=str(setup.second.id), site="centre")
    assert setup.post("/start").status_code == 200


# Exclusion grounds across rounds: reused fillers refused, repeat identification flagged


def test_reused_fillers_are_refused_and_a_repeat_identification_is_flagged(app, api, world):
    first = started(api, world, presentation="simultaneous")
    lineup = first.lineup()
    first.run(lineup["id"])
    first.setup.complete()

    second = prepared(
        api,
        world,
        presentation="simultaneous",
        case=first.setup.case,
        suspect=first.suspect,
        victim=first.victim,
    )
    second.setup.start()
    same_fillers = second.lineup()
    second_target = {"person_id": first.suspect["id"], "description": "李强，男，32岁"}
    new_fillers = second.setup.post(
        "/lineups",
        json=lineup_body("live_person", members("live_person", second_target, fillers="新陪衬")),
    ).get_json()
    assert second.interview().status_code == 201
    refused = second.assign(same_fillers["id"])
    assert slug(refused) == "fillers-reused"
    assert (refused.get_json()["law"], refused.get_json()["article"]) == ("AR", "104")
    # The refusal is kept: logged and counted, though the request failed.
    overview = api.get(second.setup.url("/identifiers"), second.setup.officer).get_json()
    assert overview[0]["refused_reuse"] == 1 and overview[0]["lineup_id"] is None
    assert second.assign(new_fillers["id"]).status_code == 200
    overview = api.get(second.setup.url("/identifiers"), second.setup.officer).get_json()
    assert overview[0]["repeat_identification"] is True
    events = second.setup.events()
    kinds = [e["kind"] for e in events]
    assert "filler_reuse_refused" in kinds
    assigned = next(e for e in events if e["kind"] == "lineup_assigned")
    assert assigned["payload"]["repeat_identification"] is True
    assert assigned["payload"]["repeat_of_sessions"] == [first.setup.id]
    second.me("POST", "/instructions", json={"acknowledged": True})
    second.me("GET", "/members")
    second.me("POST", "/choice", json={"outcome": "dont_know"})
    second.me("POST", "/confidence", json={"statement": "记不清了。", "scale": 10})
    second.setup.complete()
    [record] = second.setup.post("/record").get_json()
    flags = next(s["text"] for s in record["content"]["sections"] if s["key"] == "flags")
    assert "重复辨认" in flags and "陪衬重复使用" in flags

    with app.app_context():
        facts = db.session.scalars(
            sa.select(CaseFact).where(
                CaseFact.case_id == uuid.UUID(first.case_id), CaseFact.kind == "identification"
            )
        ).all()
        by_session = {f.data["session_id"]: f.data for f in facts}
        assert by_session[first.setup.id]["fillers_reused"] is False
        assert by_session[first.setup.id]["repeat_identification"] is False
        assert by_session[second.setup.id]["fillers_reused"] is True
        assert by_session[second.setup.id]["repeat_identification"] is True
        assert by_session[second.setup.id]["completed"] is True
        assert open_warnings(uuid.UUID(first.case_id), "filler_photos_reused")


def test_a_reused_filler_photo_is_refused_even_as_another_evidence_item(app, api, world):
    first = started(api, world, presentation="simultaneous")
    maker = photo_maker(api, first)
    photos = [maker.add(first.case_id, photo_bytes(seed=n))["id"] for n in range(10)]
    target = {"person_id": first.suspect["id"], "description": "李强近照"}
    body = lineup_body("person_photo", members("person_photo", target, photos=photos))
    first.run(first.setup.post("/lineups", json=body).get_json()["id"])
    first.setup.complete()

    second = prepared(api, world, case=first.setup.case, suspect=first.suspect, victim=first.victim)
    second.setup.start()
    copies = [maker.add(first.case_id, photo_bytes(seed=n))["id"] for n in (5, 20, 21, 22)]
    fresh = [maker.add(first.case_id, photo_bytes(seed=n))["id"] for n in range(30, 36)]
    rows = members(
        "person_photo", target, photos=[photos[0], *copies, *fresh], fillers="另一组陪衬"
    )
    lineup = second.setup.post("/lineups", json=lineup_body("person_photo", rows))
    assert lineup.status_code == 201, lineup.get_json()
    second.interview()
    assert slug(second.assign(lineup.get_json()["id"])) == "fillers-reused"


# Completion, the record and the log


def test_without_a_witness_completion_needs_a_full_recording(app, api, world):
    ident = started(api, world, presentation="simultaneous", witness=False)
    lineup = ident.lineup()
    assert slug(ident.setup.post("/complete")) == "identification-unfinished"
    ident.interview()
    ident.assign(lineup["id"])
    assert slug(ident.setup.post("/complete")) == "identification-unfinished"
    ident.me("POST", "/instructions", json={"acknowledged": True})
    ident.me("GET", "/members")
    ident.me("POST", "/choice", json={"outcome": "selected", "position": 3})
    ident.me("POST", "/confidence", json={"statement": "是他。", "scale": 95})
    assert slug(ident.setup.post("/complete")) == "recording-required"
    maker = photo_maker(api, ident)
    partial = maker.add(ident.case_id, mp4_bytes(), "part.mp4", kind="video")
    full = maker.add(ident.case_id, mp4_bytes(8192), "full.mp4", kind="video")
    linked = ident.setup.post("/recordings", json={"evidence_id": partial["id"], "full": False})
    assert linked.status_code == 201, linked.get_json()
    assert slug(ident.setup.post("/complete")) == "recording-required"
    ident.setup.post(
        "/recordings", json={"evidence_id": full["id"], "full": True, "site": "centre"}
    )
    assert ident.setup.post("/complete").status_code == 200
    [record] = ident.setup.post("/record").get_json()
    header = record["content"]["header"]
    recordings = next(s["text"] for s in record["content"]["sections"] if s["key"] == "recordings")
    assert header["witness"] == "无（全程录像）"
    assert full["id"] in recordings and full["sha256"] in recordings and "全程录像" in recordings
    assert partial["id"] in recordings


def test_the_record_carries_the_log_head_and_a_changed_log_is_detected(app, api, world):
    ident = started(api, world, presentation="simultaneous")
    ident.run(ident.lineup()["id"], choice={"outcome": "selected", "position": 1})
    assert slug(ident.setup.post("/record")) == "session-state"
    ident.setup.complete()
    [record] = ident.setup.post("/record").get_json()
    again = ident.setup.post("/record")
    assert again.status_code == 200 and again.get_json()[0]["id"] == record["id"]
    printed = record["content"]["header"]["log_head"]

    # The chain as the presiding investigators read it ends in the printed head.
    log = api.get(ident.setup.url("/events"), ident.setup.officer).get_json()
    previous = "0" * 64
    for event in log["events"]:
        assert event["prev_hash"] == previous
        previous = event["hash"]
    assert previous == printed == log["head"]
    with app.app_context():
        session = session_row(ident.setup.id)
        check = sessions.verify_log(session)
        assert check.ok and check.head == printed and check.closing_signature_valid
        # Every event is recomputed from its fields: change one and the chain breaks.
        events = sessions.events(session)
        chosen = next(e for e in events if e.kind == "choice_made")
        with db.session.no_autoflush:
            chosen.payload = {**chosen.payload, "position": 2}
            tampered = sessions.verify_log(session)
            assert not tampered.ok and tampered.first_bad_seq == chosen.seq
            assert tampered.head != printed
        db.session.rollback()
        assert sessions.verify_log(session_row(ident.setup.id)).ok


def test_the_log_cannot_be_rewritten_in_the_database(app, api, world):
    ident = started(api, world)
    ident.lineup()
    with app.app_context():
        with pytest.raises(sa.exc.DBAPIError):
            db.session.execute(
                sa.update(SessionEvent)
                .where(SessionEvent.session_id == uuid.UUID(ident.setup.id))
                .values(payload={})
            )
        db.session.rollback()


def test_an_aborted_session_leaves_a_complete_signed_off_log(app, api, world):
    ident = started(api, world, presentation="simultaneous")
    lineup = ident.lineup()
    ident.interview()
    ident.assign(lineup["id"])
    ident.me("POST", "/instructions", json={"acknowledged": True})
    ident.me("GET", "/members")
    ident.me("POST", "/choice", json={"outcome": "selected", "position": 5})
    ident.setup.abort("视频连接中断")
    assert ident.me("GET").status_code == 401
    events = ident.setup.events()
    kinds = [e["kind"] for e in events]
    assert kinds[-1] == "aborted" and kinds[-2] == "identification_stopped"
    assert events[-2]["payload"]["stage"] == "confidence"
    for kind in (
        "lineup_created",
        "identification_interview",
        "lineup_assigned",
        "instructions_acknowledged",
        "members_shown",
        "choice_made",
    ):
        assert kind in kinds
    verified = api.get(ident.setup.url("/log/verify"), ident.setup.officer).get_json()
    assert verified["ok"] and verified["count"] == len(events)
    assert verified["closing_signature_valid"] is True
    assert slug(ident.setup.post("/abort", json={"reason": "again"})) == "session-state"
    [record] = ident.setup.post("/record").get_json()
    header = record["content"]["header"]
    assert header["outcome"].startswith(
        "辨认未完成（会话中止：视频连接中断）；中止前辨认人指认第5号"
    )
    assert header["log_head"] == events[-1]["hash"]
    flags = next(s["text"] for s in record["content"]["sections"] if s["key"] == "flags")
    assert "会话中止" in flags
    with app.app_context():
        fact = db.session.scalars(
            sa.select(CaseFact).where(
                CaseFact.case_id == uuid.UUID(ident.case_id), CaseFact.kind == "identification"
            )
        ).one()
        assert fact.data["completed"] is False and fact.data["fillers_reused"] is False


def test_a_repeat_identification_in_another_case_is_flagged_by_id_number(app, api, world):
    first = started(api, world, presentation="simultaneous")
    first.run(first.lineup()["id"])
    first.setup.complete()
    # Another case about the same suspect, with the same identifier (same ID numbers).
    other = started(api, world, presentation="simultaneous", id_numbers=first.id_numbers)
    assert other.case_id != first.case_id
    lineup = other.lineup()  # the same filler descriptions: reuse counts within a case only
    other.interview()
    assert other.assign(lineup["id"]).status_code == 200
    overview = api.get(other.setup.url("/identifiers"), other.setup.officer).get_json()
    assert overview[0]["repeat_identification"] is True
    assigned = next(e for e in other.setup.events() if e["kind"] == "lineup_assigned")
    assert assigned["payload"]["repeat_of_sessions"] == [first.setup.id]


def test_a_name_only_identifier_is_matched_within_the_case_only(api, world):
    first = started(api, world, presentation="simultaneous")
    named = first.setup.add("identifier", name="孙丽", site="centre")
    lineup = first.lineup()
    first.run(lineup["id"], participant_id=named["id"])
    first.setup.complete()
    other = started(api, world, presentation="simultaneous")
    stranger = other.setup.add("identifier", name="孙丽", site="centre")
    other.interview(stranger["id"])
    assert other.assign(other.lineup()["id"], stranger["id"]).status_code == 200
    overview = api.get(other.setup.url("/identifiers"), other.setup.officer).get_json()
    assert not any(entry["repeat_identification"] for entry in overview)


def test_seeing_the_suspect_beforehand_is_recorded_and_flagged(app, api, world):
    ident = started(api, world, presentation="simultaneous")
    lineup = ident.lineup()
    exposure = "案发后在微信群里看到过嫌疑人的照片。"
    assert ident.interview(prior_exposure=exposure).status_code == 201
    ident.assign(lineup["id"])
    ident.me("POST", "/instructions", json={"acknowledged": True})
    ident.me("GET", "/members")
    ident.me("POST", "/choice", json={"outcome": "dont_know"})
    ident.me("POST", "/confidence", json={"statement": "说不准。", "scale": 20})
    ident.setup.complete()
    [record] = ident.setup.post("/record").get_json()
    sections = {s["key"]: s["text"] for s in record["content"]["sections"]}
    assert exposure in sections["interview"] and "辨认前接触" in sections["flags"]
    with app.app_context():
        fact = db.session.scalars(
            sa.select(CaseFact).where(
                CaseFact.case_id == uuid.UUID(ident.case_id), CaseFact.kind == "identification"
            )
        ).one()
        assert fact.data["prior_exposure"] is True
        assert fact.data["officers"] == 2 and fact.data["witness_present"] is True


# Who signs the record


def signed_by_presiding_and_identifier(api: Api, ident: Identification) -> dict[str, Any]:
    """The record of an ended session signed by both presiding investigators and, on
    their tablet, the identifier; the document as read back."""
    [record] = ident.setup.post("/record").get_json()
    tablet = enroll(api, ident.setup.officer)
    officer = tablet.sign(record, "officer", "a1 officer", user=ident.setup.officer)
    assert officer.status_code == 201, officer.get_json()
    second = tablet.sign(record, "second_officer", "a1 officer2", user=ident.setup.second)
    assert second.status_code == 201, second.get_json()
    party = tablet.body(record, "party", "王芳")
    del party["signer_role"], party["signer_name"]
    assert ident.me("POST", "/record/signature", json=party).status_code == 201
    return api.get(f"/api/v1/documents/{record['id']}", ident.setup.officer).get_json()


def test_a_record_attested_by_a_witness_is_signed_only_once_the_witness_signs(api, world):
    ident = started(api, world, presentation="simultaneous")
    ident.run(ident.lineup()["id"], choice={"outcome": "selected", "position": 2})
    ident.setup.complete()
    document = signed_by_presiding_and_identifier(api, ident)
    assert document["needs_witness"]
    assert document["required_signatures"] == ["officer", "second_officer", "party", "witness"]
    assert document["status"] == "finalized" and document["missing_signatures"] == ["witness"]

    witness = enroll(api, ident.setup.officer).sign(document, "witness", "赵敏")
    assert witness.status_code == 201, witness.get_json()
    signed = api.get(f"/api/v1/documents/{document['id']}", ident.setup.officer).get_json()
    assert signed["status"] == "signed" and signed["missing_signatures"] == []


def test_a_record_without_a_witness_is_signed_by_the_presiding_and_the_identifier(api, world):
    ident = started(api, world, presentation="simultaneous", witness=False)
    ident.run(ident.lineup()["id"], choice={"outcome": "not_present"})
    full = photo_maker(api, ident).add(ident.case_id, mp4_bytes(8192), "full.mp4", kind="video")
    linked = ident.setup.post("/recordings", json={"evidence_id": full["id"], "full": True})
    assert linked.status_code == 201, linked.get_json()
    ident.setup.complete()
    document = signed_by_presiding_and_identifier(api, ident)
    assert not document["needs_witness"]
    assert document["required_signatures"] == ["officer", "second_officer", "party"]
    assert document["status"] == "signed"
    late = enroll(api, ident.setup.officer).sign(document, "witness", "赵敏")
    assert slug(late) == "document-frozen"
