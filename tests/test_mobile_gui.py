"""The Kivy client on a real window (Xvfb), against a real Fieldcase server in this
process: sign in, file a report that the sync worker delivers and that shows as a
case, request a step that needs approval, capture evidence from a file, and a
legal officer approving the step. Screenshots of every screen in both languages
go to docs/screenshots/.

The tests run in order on one app (Kivy has one window per process).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from conftest import PASSWORD, Api, Org, build_org
from support_gui import Driver, running_app, xvfb  # noqa: F401  (xvfb: a fixture)
from support_server import serving

pytestmark = pytest.mark.one_backend  # the client's windows: the server's database plays no part

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "docs" / "screenshots"
TITLE = f"夜市斗殴 {uuid.uuid4().hex[:6]}"
LANGUAGES = ("zh_CN", "en")


@pytest.fixture(scope="module")
def server(app: Flask) -> Iterator[str]:
    with serving(app) as url:
        yield url


@pytest.fixture(scope="module")
def gui(xvfb: str, server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Driver]:  # noqa: F811
    with running_app(server, tmp_path_factory.mktemp("client")) as driver:
        yield driver


@pytest.fixture(scope="module")
def world(app: Flask) -> Org:
    """An organisation of this file's own: the shared one fills up with other files' cases,
    which would lengthen the lists the tests scroll through."""
    with app.app_context():
        return build_org("g" + uuid.uuid4().hex[:6])


@pytest.fixture(scope="module")
def shared() -> dict[str, Any]:
    """What one test leaves for the next (the case id)."""
    return {}


def sign_in(gui: Driver, username: str) -> None:
    assert gui.current == "signin"
    screen = gui.screen("signin")
    gui.type_into(screen.ids.username, username)
    gui.type_into(screen.ids.password, PASSWORD)
    gui.tap(screen.ids.submit)
    gui.wait_for(lambda: gui.current == "home", what="the home screen after signing in")


def sign_out(gui: Driver) -> None:
    gui.app.show("settings")
    gui.wait_for(lambda: not gui.app.state.sync_status().waiting, what="an empty outbox")
    gui.tap(gui.screen("settings").ids.sign_out)
    gui.wait_for(lambda: gui.current == "signin", what="the sign-in screen")


def delivered(gui: Driver) -> bool:
    return all(item.state == "done" for item in gui.app.state.outbox_items())


def test_officer_files_a_report_that_becomes_a_case(gui: Driver, world: Org, shared: dict) -> None:
    officer = world.user("a1.officer")
    screen = gui.screen("signin")
    assert screen.ids.server.text.startswith("http://127.0.0.1:")
    gui.type_into(screen.ids.username, officer.username)
    gui.type_into(screen.ids.password, "wrong password")
    gui.tap(screen.ids.submit)
    gui.wait_for(lambda: not screen.busy, what="the failed sign-in")
    assert gui.current == "signin"
    assert screen.message
    sign_in(gui, officer.username)

    gui.tap(gui.screen("home").ids.new_report)
    assert gui.current == "report"
    report = gui.screen("report")
    gui.tap(report.ids.save)
    assert report.ids.place.error and report.ids.summary.error, "empty required fields"
    assert gui.app.state.outbox_items() == []
    gui.type_into(report.ids.place, "人民路1号夜市")
    gui.type_into(report.ids.summary, "两人在夜市互殴，一人轻伤。")
    gui.type_into(report.ids.reporter, "张伟")
    gui.type_into(report.ids.title, TITLE)
    gui.tap(report.ids.save)

    items = gui.app.state.outbox_items()
    assert [(i.kind, i.title) for i in items] == [("incident", TITLE)], "saved before 'saved'"
    assert gui.current == "home"
    gui.wait_for(lambda: delivered(gui), what="the report to reach the server")
    home = gui.screen("home")

    def case_row() -> Any:
        """The case's row, once the server's case is cached (not the one made offline)."""
        served = [c for c in gui.app.state.my_cases() if c["title"] == TITLE and c["number"]]
        if not served:
            return None
        number = served[0]["number"]
        return next((r for r in home.ids.cases.children if number in r.subtitle), None)

    row = gui.wait_for(case_row, what="the case, with its number, on the home screen")
    gui.tap(row)
    assert gui.current == "case"
    case = gui.screen("case")
    assert case.ids.bar.title == TITLE
    shared["case_id"] = row.key


def test_officer_requests_a_step_and_captures_evidence(
    gui: Driver, shared: dict, tmp_path: Path, api: Api, world: Org
) -> None:
    case = gui.screen("case")
    gui.wait_for(lambda: case.ids.actions.children, what="the case's actions")
    revoke = next(b for b in case.ids.actions.children if getattr(b, "action_name", "") == "revoke")
    gui.tap(revoke)
    reason = case._inputs["reason"]
    gui.tap(case.ids.form.children[0])
    assert reason.error, "the required reason is checked on the device"
    gui.type_into(reason, "报警人撤回报警，经核实不构成违法。")
    gui.tap(case.ids.form.children[0])
    assert [i.kind for i in gui.app.state.outbox_items()] == ["incident", "transition"]

    gui.wait_for(lambda: delivered(gui), what="the step to arrive")
    gui.pump(1)

    photo = tmp_path / "scene.jpg"
    photo.write_bytes(b"\xff\xd8\xff\xe0" + uuid.uuid4().bytes * 4096)
    gui.tap(case.ids.add_evidence)
    assert gui.current == "evidence"
    evidence = gui.screen("evidence")
    evidence.path = str(photo)
    gui.type_into(evidence.ids.place, "人民路1号夜市东侧")
    gui.type_into(evidence.ids.description, "现场照片")
    gui.tap(evidence.ids.save)
    assert gui.current == "case"
    gui.wait_for(lambda: delivered(gui), timeout=90, what="the step and the evidence to arrive")

    officer = world.user("a1.officer")
    served = api.get(f"/api/v1/cases/{shared['case_id']}", officer).get_json()
    assert served["pending_request_id"], served
    listed = api.get(f"/api/v1/cases/{shared['case_id']}/evidence", officer).get_json()
    assert [e["description"] for e in listed] == ["现场照片"]
    gui.app.state.worker.refresh_now()
    gui.wait_for(
        lambda: case.ids.pending.text and case.ids.evidence.children[0].title == "现场照片",
        what="the case screen to show the pending step and the evidence",
    )


def test_legal_officer_approves_the_step(gui: Driver, world: Org, api: Api, shared: dict) -> None:
    sign_out(gui)
    assert gui.app.state.my_cases() == [], "signing out wipes the cached cases"
    sign_in(gui, world.user("a1.legal").username)
    gui.app.show("approvals")
    approvals = gui.screen("approvals")

    def entry() -> Any:
        return next((e for e in approvals.ids.entries.children if e.case_title == TITLE), None)

    gui.wait_for(entry, what="the pending approval")
    for language in LANGUAGES:
        gui.app.set_language(language)
        gui.screenshot(SCREENSHOTS / f"approvals-{language}.png")
    gui.pump(1)
    found = entry()
    gui.tap(found.ids.return_step)
    assert found.error, "returning needs a comment"
    gui.type_into(found.ids.comment, "同意撤销。")
    gui.tap(found.ids.approve)
    assert all(e.case_title != TITLE for e in approvals.ids.entries.children)
    gui.wait_for(lambda: delivered(gui), what="the decision to arrive")
    shared["approval_id"] = found.approval_id
    approval = api.get(f"/api/v1/approvals/{found.approval_id}", world.user("a1.legal"))
    assert approval.get_json()["status"] == "approved"
    assert approval.get_json()["comment"] == "同意撤销。"


def test_outbox_shows_a_conflict_with_the_servers_state(gui: Driver, shared: dict) -> None:
    """Deciding an approval decided already: the server answers 409, the outbox shows
    the approval as the server has it, and the officer discards the item."""
    gui.app.state.decide(shared["approval_id"], "approve", "再次同意")
    gui.app.show("outbox")
    outbox = gui.screen("outbox")

    def conflict() -> Any:
        return next((e for e in outbox.ids.entries.children if e.item_state == "conflict"), None)

    gui.wait_for(conflict, what="the conflict in the outbox")
    gui.pump(0.5)
    entry = conflict()
    assert entry.detail, "the server's current state is shown"
    assert entry.ids.act.text and entry.ids.discard.opacity == 1
    for language in LANGUAGES:
        gui.app.set_language(language)
        gui.screenshot(SCREENSHOTS / f"outbox-{language}.png")
    assert "已批准" in entry.detail or "approved" in entry.detail
    gui.tap(conflict().ids.discard)
    assert all(i.state == "done" for i in gui.app.state.outbox_items())
    assert not outbox.ids.entries.children or all(
        e.item_state == "done" for e in outbox.ids.entries.children
    )


def test_idle_lock_keeps_the_outbox(gui: Driver, world: Org) -> None:
    before = [(i.id, i.state) for i in gui.app.state.outbox_items()]
    gui.app.show("settings")
    settings = gui.screen("settings")
    settings.ids.idle.text = "1"
    assert gui.app.idle_lock_minutes() == 1
    gui.app._last_activity -= 61
    gui.wait_for(lambda: gui.current == "signin", timeout=15, what="the idle lock")
    signin = gui.screen("signin")
    assert signin.locked and signin.ids.username.text == world.user("a1.legal").username
    assert gui.app.state.signed_in, "the lock keeps the session: the outbox is still sent"
    assert [(i.id, i.state) for i in gui.app.state.outbox_items()] == before
    gui.type_into(signin.ids.password, PASSWORD)
    gui.tap(signin.ids.submit)
    gui.wait_for(lambda: gui.current == "home", what="the home screen after unlocking")
    assert not signin.locked
    settings.ids.idle.text = "10"


def draw_signature(gui: Driver, pad: Any, points: int = 30) -> None:
    """A stroke drawn with real touches, 8 px apart, from (30, 60) in the pad."""
    from kivy.tests.common import UnitTestTouch

    left, bottom = pad.to_window(pad.x, pad.y)
    touch = UnitTestTouch(left + 30, bottom + 60)
    touch.touch_down()
    for step in range(1, points):
        gui.pump(0.01)
        touch.touch_move(left + 30 + step * 8, bottom + 60 + (step % 5) * 15)
    touch.touch_up()
    gui.pump(0.1)


def test_officers_and_the_person_sign_a_transcript_that_arrives_signed(
    gui: Driver, world: Org, api: Api, shared: dict, tmp_path: Path
) -> None:
    """The second officer has signed in on this device before; the officer fills an
    inquiry record of a witness from the question bank, the witness signs (with a
    fingerprint photo), then both officers; the server holds it signed."""
    from PIL import Image

    officer, second = world.user("a1.officer"), world.user("a1.officer2")
    sign_out(gui)
    sign_in(gui, second.username)
    sign_out(gui)
    sign_in(gui, officer.username)
    case = api.case(officer)
    added = api.post(
        f"/api/v1/cases/{case['id']}/persons", officer, json={"role": "witness", "name": "李强"}
    )
    assert added.status_code == 201, added.get_json()
    shared["transcript_case_id"] = case["id"]
    gui.app.state.worker.refresh_now()
    gui.wait_for(
        lambda: gui.app.state.case_persons(case["id"]) and gui.app.state.document_catalogue(),
        what="the case's person and the document templates in the cache",
    )

    gui.app.show("transcript", case_id=case["id"])
    screen = gui.screen("transcript")
    screen.ids.person.text = next(v for v in screen.person_values if v.startswith("李强"))
    assert screen.transcript["kind"] == "inquiry_record"
    assert screen.transcript["person_id"] == added.get_json()["id"]
    gui.pump(0.3)
    assert screen.signers == ["party", "officer", "second_officer"]
    inputs = screen._inputs
    gui.type_into(inputs["header:started_at"][2], "2026-03-02 09:00")
    gui.type_into(inputs["header:ended_at"][2], "2026-03-02 09:40")
    gui.type_into(inputs["rights_answer:"][2], "听清楚了。")
    question = next(key for key in inputs if key.startswith("qa:"))
    gui.type_into(inputs[question][2], "我看见两人在夜市互殴。")

    pad = screen.ids.pad
    gui.tap(screen.ids.accept)
    assert screen.message, "an empty pad is not a signature"
    draw_signature(gui, pad)
    assert len(pad.strokes) == 1 and len(pad.strokes[0]) == 30
    xs = [point[0] for point in pad.strokes[0]]
    times = [point[2] for point in pad.strokes[0]]
    assert xs[0] == 30 and xs[-1] == 30 + 29 * 8, "points are in the pad's own coordinates"
    assert times == sorted(times) and times[-1] > times[0]
    fingerprint = tmp_path / "thumb.png"
    Image.new("L", (32, 40), color=90).save(fingerprint)
    screen._fingerprint_taken(str(fingerprint))
    gui.tap(screen.ids.accept)

    signature = screen.signatures[0]
    assert signature["signer_role"] == "party" and signature["signer_name"] == "李强"
    assert signature["fingerprint"] == str(fingerprint)
    assert len(signature["strokes"]) == 1
    image = Image.open(signature["image"]).convert("L")
    assert image.size == (int(pad.width), int(pad.height))
    dark = [
        (x, y)
        for x in range(image.width)
        for y in range(image.height)
        if image.getpixel((x, y)) < 128
    ]
    assert dark, "the strokes are drawn"
    assert min(x for x, _y in dark) >= 25 and max(x for x, _y in dark) <= 30 + 29 * 8 + 5
    # PNG rows run top-down: the stroke at y 60..120 from the bottom is in the lower half.
    assert min(y for _x, y in dark) > image.height - 130
    assert pad.strokes == [], "the pad is cleared for the next signer"
    assert inputs[question][2].disabled, "the text signed is fixed"

    draw_signature(gui, pad)
    gui.tap(screen.ids.accept)
    assert screen.second_officer_turn and screen.colleague_text
    draw_signature(gui, pad)
    gui.tap(screen.ids.accept)
    assert [s["signer_role"] for s in screen.signatures] == ["party", "officer", "second_officer"]
    assert screen.signatures[2]["signer_user_id"] == str(second.id)
    gui.tap(screen.ids.save)
    assert gui.current != "transcript", screen.message
    kinds = [i.kind for i in gui.app.state.outbox_items()]
    assert kinds == ["transcript", "signature", "signature", "signature"]
    gui.wait_for(lambda: delivered(gui), timeout=90, what="the transcript to arrive signed")

    documents = api.get(f"/api/v1/cases/{case['id']}/documents", officer).get_json()
    assert [(d["kind"], d["status"]) for d in documents] == [("inquiry_record", "signed")]


SCREENS = ("home", "report", "case", "evidence", "transcript", "warnings", "settings")
ON_A_CASE = ("case", "evidence", "transcript")


def test_screenshots_of_every_screen(gui: Driver, world: Org, api: Api, shared: dict) -> None:
    """Every screen in both languages (the approvals screen was taken above, with an
    approval in it), as the officer whose case it is; a seizure by one officer puts a
    warning on the warnings screen, acknowledged there at the end."""
    sign_out(gui)
    for language in LANGUAGES:
        gui.app.set_language(language)
        gui.screenshot(SCREENSHOTS / f"signin-{language}.png")
    officer = world.user("a1.officer")
    response = api.post(
        f"/api/v1/cases/{shared['case_id']}/facts",
        officer,
        json={
            "kind": "property_seized",
            "subject": "gui-1",
            "started_at": datetime.now(UTC).isoformat(),
            "data": {"officers": 1},
        },
    )
    assert response.status_code == 201, response.get_json()
    sign_in(gui, officer.username)
    gui.wait_for(lambda: gui.app.state.case(shared["case_id"]), what="the case in the cache")
    gui.wait_for(gui.app.state.warnings, what="the warning in the cache")
    for language in LANGUAGES:
        gui.app.set_language(language)
        for name in SCREENS:
            case_id = shared["transcript_case_id" if name == "transcript" else "case_id"]
            gui.app.show(name, **({"case_id": case_id} if name in ON_A_CASE else {}))
            if name == "transcript":
                pad = gui.screen("transcript").ids.pad
                pad.strokes = [[[60 + i * 8, 70 + (i % 9) * 10, i * 20] for i in range(40)]]
            path = gui.screenshot(SCREENSHOTS / f"{name}-{language}.png")
            assert path.stat().st_size > 5_000
    shots = {p.name for p in SCREENSHOTS.glob("*.png")}
    taken_above = ("signin", "approvals", "outbox")
    expected = {f"{n}-{lang}.png" for n in (*SCREENS, *taken_above) for lang in LANGUAGES}
    assert expected <= shots

    gui.app.show("warnings")
    entry = next(e for e in gui.screen("warnings").ids.warnings.children if not e.done)
    gui.tap(entry.ids.acknowledge)
    queued = [i for i in gui.app.state.outbox_items() if i.kind == "acknowledgement"]
    assert [i.payload["warning_id"] for i in queued] == [entry.key]
    gui.wait_for(lambda: delivered(gui), what="the acknowledgement delivered")
    shown = {e.key: e.done for e in gui.screen("warnings").ids.warnings.children}
    assert shown[entry.key] is True
