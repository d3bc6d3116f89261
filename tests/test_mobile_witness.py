"""The field client's witness mode (issue 6, item 7) against a real server over HTTP:
a witness enters a one-time code on a police tablet, acknowledges the instructions,
sees the members (one at a time in sequential presentation, all at once in
simultaneous), chooses, states confidence and signs the record.

The first tests drive the flow controller (``mobile.services.witness``) without a
window; the last drives the real screens on a real window under Xvfb through the
whole procedure in both presentations, checks that no label ever shows a hint
(a member's id, the suspect's name), and writes screenshots of every witness
screen in both languages to docs/screenshots/.
"""

from __future__ import annotations

import queue
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from mobile.services.witness import TabletKey, WitnessFlow, WitnessView, tablet_key

from conftest import PASSWORD, Api, Org
from support_documents import STROKES, png_bytes
from support_evidence import EvidenceMaker, enrol
from support_evidence import png_bytes as photo_bytes
from support_gui import Driver, running_app, xvfb  # noqa: F401  (xvfb: a fixture)
from support_identification import Identification, lineup_body, members, prepared
from support_mobile import Phone
from support_server import serving

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "docs" / "screenshots"
LANGUAGES = ("zh_CN", "en")
WAIT_SECONDS = 45
STATEMENT = "我很确定就是他，左眉的疤。"
SUSPECT_NAME = "李强"


@pytest.fixture(scope="module")
def server(app: Flask) -> Iterator[str]:
    """The app over real HTTP; joins come from one address here, so the join rate limit
    is raised for this module's requests."""
    before = app.config.get("RATE_LIMIT_PARTICIPANT_JOIN_PER_MINUTE")
    app.config["RATE_LIMIT_PARTICIPANT_JOIN_PER_MINUTE"] = 1000
    try:
        with serving(app) as url:
            yield url
    finally:
        if before is None:
            app.config.pop("RATE_LIMIT_PARTICIPANT_JOIN_PER_MINUTE")
        else:
            app.config["RATE_LIMIT_PARTICIPANT_JOIN_PER_MINUTE"] = before


@pytest.fixture
def tablet(tmp_path: Path, server: str, world: Org) -> Iterator[Phone]:
    """A police tablet on which the presiding officer has signed in once (its device key
    is enrolled) and signed out again: no officer is signed in."""
    phone = Phone(tmp_path / "tablet", server)
    phone.worker.start()
    assert phone.sign_in(world.user("a1.officer")).kind == "signed_in"
    phone.state.sign_out()
    assert not phone.state.signed_in
    try:
        yield phone
    finally:
        phone.close()


class Witness:
    """A ``WitnessFlow`` whose views are collected as they come (``deliver`` runs them on
    the flow's thread, where the app would hand them to the UI thread)."""

    def __init__(self, server: str, key: TabletKey | None) -> None:
        self.views: queue.Queue[WitnessView] = queue.Queue()
        self.flow = WitnessFlow(server, key, on_view=self.views.put, deliver=lambda done: done())

    def do(self, action: str, *arguments: Any) -> WitnessView:
        getattr(self.flow, action)(*arguments)
        view = self.views.get(timeout=WAIT_SECONDS)
        assert not self.flow.busy
        return view


def started(api: Api, world: Org, presentation: str) -> Identification:
    ident = prepared(api, world, presentation=presentation)
    ident.setup.start()
    return ident


def assigned(ident: Identification, lineup: dict[str, Any]) -> str:
    """Interview and assign the lineup; the identifier's fresh one-time code."""
    assert ident.interview().status_code == 201
    response = ident.assign(lineup["id"])
    assert response.status_code == 200, response.get_json()
    return ident.setup.code(ident.identifier["id"])


def photo_lineup(api: Api, ident: Identification) -> tuple[dict[str, Any], list[bytes]]:
    """A lineup of ten photos of people (evidence of the case); the photos' bytes."""
    maker = EvidenceMaker(api, ident.setup.officer, enrol(api, ident.setup.officer))
    images = [photo_bytes(width=30, height=40, seed=n) for n in range(10)]
    photos = [maker.add(ident.case_id, data, f"p{n}.png")["id"] for n, data in enumerate(images)]
    target = {"person_id": ident.suspect["id"], "description": "李强近照"}
    body = lineup_body("person_photo", members("person_photo", target, photos=photos))
    response = ident.setup.post("/lineups", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json(), images


def record_for_signature(ident: Identification) -> dict[str, Any]:
    """The presiding officer completes the session and writes the identifier's record."""
    ident.setup.complete()
    response = ident.setup.post("/record")
    assert response.status_code == 201, response.get_json()
    [record] = response.get_json()
    return record


def party_signatures(api: Api, ident: Identification, document_id: str) -> list[dict[str, Any]]:
    response = api.get(f"/api/v1/documents/{document_id}/signatures", ident.setup.officer)
    assert response.status_code == 200, response.get_json()
    return [s for s in response.get_json() if s["role"] == "party"]


def stored_bytes(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


# The flow controller


def test_sequential_witness_answers_each_member_then_signs(
    api: Api, world: Org, server: str, tablet: Phone
) -> None:
    ident = started(api, world, "sequential")
    code = assigned(ident, ident.lineup("live_person"))
    witness = Witness(server, tablet_key(tablet.store, tablet.device, server))

    view = witness.do("join", code)
    assert view.step == "instructions" and view.error is None
    assert view.presentation == "sequential" and view.member_count == 7
    assert "may or may not" in view.instructions["en"]
    view = witness.do("acknowledge")
    for position in range(1, 8):
        assert view.step == "lineup"
        assert [(m.position, m.label, m.image) for m in view.members] == [
            (position, str(position), None)
        ]
        view = witness.do("answer", position, "yes" if position in (2, 5) else "no")
    assert view.step == "choice" and view.choosable == (2, 5), "the members answered yes"
    view = witness.do("choose", "selected", 5)
    assert view.step == "confidence"
    view = witness.do("state_confidence", STATEMENT, 90)
    assert view.step == "done" and not view.signed

    token = witness.flow.session.client.access_token
    assert token and token.encode() not in stored_bytes(tablet.data_dir), "kept in memory only"

    record = record_for_signature(ident)
    view = witness.do("refresh")
    assert view.step == "record" and view.record_available
    assert any(STATEMENT in line for line in view.record_lines)
    view = witness.do("sign", STROKES, png_bytes())
    assert view.step == "done" and view.signed and view.error is None
    [signature] = party_signatures(api, ident, record["id"])
    assert signature["signer_name"] == "王芳"
    assert signature["device_id"] == tablet.device.device_id_for(world.user("a1.officer").username)

    events = ident.setup.events()
    choice = next(e for e in events if e["kind"] == "choice_made")
    assert choice["payload"]["outcome"] == "selected" and choice["payload"]["position"] == 5
    witness.flow.end(wait=True)
    assert witness.flow.session.client.access_token is None, "the token is forgotten"


def test_simultaneous_photos_all_shown_and_the_choice_can_go_back(
    api: Api, world: Org, server: str, tablet: Phone
) -> None:
    ident = started(api, world, "simultaneous")
    lineup, images = photo_lineup(api, ident)
    code = assigned(ident, lineup)
    witness = Witness(server, tablet_key(tablet.store, tablet.device, server))

    assert witness.do("join", code).step == "instructions"
    view = witness.do("acknowledge")
    assert view.step == "lineup" and view.presentation == "simultaneous"
    assert [m.label for m in view.members] == [str(n) for n in range(1, 11)]
    assert sorted(m.image for m in view.members) == sorted(images), "every photo, once"
    shown = view.members

    view = witness.do("to_choice")
    assert view.step == "choice" and view.choosable == tuple(range(1, 11))
    view = witness.do("to_members")
    assert view.step == "lineup" and view.members == shown
    view = witness.do("refresh")
    assert view.step == "lineup" and view.members == shown, "the server is at its choice step"
    witness.do("to_choice")
    view = witness.do("choose", "not_present")
    assert view.step == "confidence"
    view = witness.do("state_confidence", "我确定他不在里面。", 75)
    assert view.step == "done"
    choice = next(e for e in ident.setup.events() if e["kind"] == "choice_made")
    assert choice["payload"]["outcome"] == "not_present"
    witness.flow.end()


def test_codes_that_do_not_start_a_witness(
    api: Api, world: Org, server: str, tablet: Phone, tmp_path: Path
) -> None:
    ident = started(api, world, "sequential")
    code = assigned(ident, ident.lineup("live_person"))
    key = tablet_key(tablet.store, tablet.device, server)

    wrong = Witness(server, key).do("join", "00000000")
    assert (wrong.step, wrong.error) == ("code", "code_refused")

    assert ident.witness is not None
    attesting = ident.setup.code(ident.witness["id"])
    refused = Witness(server, key).do("join", attesting)
    assert (refused.step, refused.error) == ("code", "not_identifier")

    fresh = Phone(tmp_path / "unregistered", server)
    try:
        assert tablet_key(fresh.store, fresh.device, server) is None
        unregistered = Witness(server, None).do("join", code)
    finally:
        fresh.close()
    assert (unregistered.step, unregistered.error) == ("code", "device_not_enrolled")
    assert Witness(server, key).do("join", code).step == "instructions", "the code was not used"


def test_a_step_out_of_order_is_refused_and_the_server_is_followed(
    api: Api, world: Org, server: str, tablet: Phone
) -> None:
    ident = started(api, world, "sequential")
    code = assigned(ident, ident.lineup("live_person"))
    witness = Witness(server, tablet_key(tablet.store, tablet.device, server))
    witness.do("join", code)
    witness.do("acknowledge")

    view = witness.do("answer", 2, "no")
    assert view.error == "refused" and view.detail
    assert view.step == "lineup" and [m.position for m in view.members] == [1]
    assert witness.do("answer", 1, "no").members[0].position == 2


def test_a_revoked_witness_is_told_the_session_ended(
    api: Api, world: Org, server: str, tablet: Phone
) -> None:
    ident = started(api, world, "simultaneous")
    code = assigned(ident, ident.lineup("live_person"))
    witness = Witness(server, tablet_key(tablet.store, tablet.device, server))
    assert witness.do("join", code).step == "instructions"
    revoked = ident.setup.post(f"/participants/{ident.identifier['id']}/revoke")
    assert revoked.status_code == 200, revoked.get_json()
    view = witness.do("acknowledge")
    assert (view.step, view.error) == ("ended", "session_ended")


# The screens, on a real window


@pytest.fixture(scope="module")
def gui(xvfb: str, server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Driver]:  # noqa: F811
    with running_app(server, tmp_path_factory.mktemp("witness-tablet")) as driver:
        yield driver


def shown_texts(gui: Driver) -> list[str]:
    """Every text on the current screen: labels, buttons and inputs."""
    from kivy.uix.label import Label
    from kivy.uix.textinput import TextInput

    texts = []
    for widget in gui.screen().walk():
        if isinstance(widget, Label | TextInput) and widget.text:
            texts.append(widget.text)
    return texts


def assert_no_hint(gui: Driver, hints: list[str]) -> None:
    for text in shown_texts(gui):
        for hint in hints:
            assert hint not in text, f"{hint!r} shown on {gui.current}: {text!r}"


def screenshots(gui: Driver, name: str, hints: list[str]) -> None:
    """The current screen in both languages (checked for hints in each)."""
    for language in LANGUAGES:
        gui.app.set_language(language)
        gui.pump(0.3)
        assert_no_hint(gui, hints)
        path = gui.screenshot(SCREENSHOTS / f"witness-{name}-{language}.png")
        assert path.stat().st_size > 5_000
    gui.app.set_language("zh_CN")


def type_text(gui: Driver, text_input: Any, text: str) -> None:
    text_input.focus = True
    text_input.select_all()
    text_input.delete_selection()
    text_input.insert_text(text)
    text_input.focus = False
    gui.pump(0.05)


def touch_at(gui: Driver, widget: Any, fraction: float) -> None:
    """A real touch at ``fraction`` of the widget's width, at its middle height."""
    from kivy.tests.common import UnitTestTouch

    x, y = widget.to_window(widget.x + widget.width * fraction, widget.center_y)
    touch = UnitTestTouch(x, y)
    touch.touch_down()
    gui.pump(0.05)
    touch.touch_up()
    gui.pump(0.2)


def draw_signature(gui: Driver, pad: Any) -> None:
    from kivy.tests.common import UnitTestTouch

    left, bottom = pad.to_window(pad.x, pad.y)
    touch = UnitTestTouch(left + 30, bottom + 60)
    touch.touch_down()
    for step in range(1, 30):
        gui.pump(0.01)
        touch.touch_move(left + 30 + step * 8, bottom + 60 + (step % 5) * 15)
    touch.touch_up()
    gui.pump(0.1)


def reach(gui: Driver, screen: str) -> Any:
    gui.wait_for(lambda: gui.current == screen, timeout=WAIT_SECONDS, what=f"the {screen} screen")
    gui.pump(0.3)
    return gui.screen()


def tile_looks(tile: Any) -> tuple[Any, ...]:
    """What a member tile looks like, apart from its number and photo."""
    label = next(w for w in tile.walk() if type(w).__name__ == "Label")
    return (tuple(tile.size), label.font_size, label.bold, tuple(label.color), len(tile.children))


def shown_member(screen: Any) -> str | None:
    """The label of the one member on the stage, once it has slid into place."""
    stage = screen.ids.stage
    tiles = stage.children
    if len(tiles) != 1 or abs(tiles[0].x - stage.x) > 1:
        return None
    return tiles[0].label


def run_in_the_gui(
    gui: Driver, api: Api, ident: Identification, lineup: dict[str, Any], *, first: bool
) -> None:
    """The whole procedure on the screens, from the sign-in screen back to it."""
    hints = [SUSPECT_NAME, ident.suspect["id"], *(m["id"] for m in lineup["members"])]
    hints += [m["evidence_id"] for m in lineup["members"] if m.get("evidence_id")]
    sequential = ident.setup.session["settings"]["presentation"] == "sequential"
    code = assigned(ident, lineup)

    assert gui.current == "signin" and not gui.app.state.signed_in
    gui.tap(gui.screen("signin").ids.witness_mode)
    screen = reach(gui, "witness_code")
    type_text(gui, screen.ids.code, code)
    if first:
        screenshots(gui, "code", hints)
    gui.tap(screen.ids.submit)

    screen = reach(gui, "witness_instructions")
    assert "可能在其中，也可能不在其中" in screen.ids.instructions.text
    if first:
        screenshots(gui, "instructions", hints)
    gui.tap(screen.ids.acknowledge)

    screen = reach(gui, "witness_lineup")
    mode = "sequential" if sequential else "simultaneous"
    if sequential:
        for position in range(1, len(lineup["members"]) + 1):
            gui.wait_for(
                lambda p=position: shown_member(screen) == str(p) and not screen.busy,
                what=f"member {position} in place",
            )
            if position == 1:
                assert screen.ids.stage.height > 300, "the member fills the stage"
                screenshots(gui, f"lineup-{mode}", hints)
            gui.tap(screen.ids.answer_yes if position == 3 else screen.ids.answer_no)
        yes = "3"
    else:
        tiles = list(reversed(screen.ids.grid.children))
        assert [t.label for t in tiles] == [str(n) for n in range(1, 11)]
        assert all(t.texture is not None for t in tiles), "each photo is shown"
        assert len({tile_looks(t) for t in tiles}) == 1, "every member looks the same"
        screenshots(gui, f"lineup-{mode}", hints)
        gui.tap(screen.ids.to_choice)
        yes = "7"

    screen = reach(gui, "witness_choice")
    buttons = list(reversed(screen.ids.positions.children))
    assert [b.text for b in buttons] == ([yes] if sequential else [str(n) for n in range(1, 11)])
    looks = {(tuple(b.size), b.font_size, tuple(b.color), b.bold) for b in buttons}
    assert len(looks) == 1, "every position looks the same"
    gui.tap(next(b for b in buttons if b.text == yes))
    assert screen.outcome == "selected" and screen.position == int(yes)
    if first:
        screenshots(gui, "choice", hints)
    gui.tap(screen.ids.confirm)

    screen = reach(gui, "witness_confidence")
    gui.tap(screen.ids.submit)
    assert screen.message and gui.current == "witness_confidence", "the words are required"
    type_text(gui, screen.ids.statement, STATEMENT)
    gui.tap(screen.ids.submit)
    assert screen.message, "a number on the scale is required"
    touch_at(gui, screen.ids.scale, 0.8)
    assert screen.scale_set and 60 <= screen.ids.scale.value <= 95
    scale = int(screen.ids.scale.value)
    if first:
        screenshots(gui, "confidence", hints)
    gui.tap(screen.ids.submit)

    screen = reach(gui, "witness_wait")
    gui.wait_for(lambda: screen.step == "done", what="the answers saved")
    if first:
        screenshots(gui, "done", hints)
    record = record_for_signature(ident)
    screen = reach(gui, "witness_record")
    gui.wait_for(lambda: screen.record_available, what="the record")
    assert STATEMENT in screen.ids.record.text
    gui.tap(screen.ids.sign)
    assert screen.message, "an empty pad is not a signature"
    draw_signature(gui, screen.ids.pad)
    if first:  # the record states the composition and the result, as the law wants it
        screenshots(gui, "record", [])
    gui.tap(screen.ids.sign)

    screen = reach(gui, "witness_wait")
    gui.wait_for(lambda: screen.view.signed, what="the signature sent")
    if first:
        screenshots(gui, "signed", hints)
    gui.tap(screen.ids.finish)
    reach(gui, "signin")
    assert gui.app.witness is None

    [signature] = party_signatures(api, ident, record["id"])
    assert signature["signer_name"] == "王芳"
    assert signature["submitted_by"] == str(ident.setup.officer.id), "the tablet's owner"
    events = ident.setup.events()
    choice = next(e for e in events if e["kind"] == "choice_made")
    assert choice["payload"] == {**choice["payload"], "outcome": "selected", "position": int(yes)}
    confidence = next(e for e in events if e["kind"] == "confidence_stated")
    assert confidence["payload"]["statement"] == STATEMENT
    assert confidence["payload"]["scale"] == scale


@pytest.mark.one_backend
def test_the_witness_mode_on_the_screens(gui: Driver, api: Api, world: Org) -> None:
    """The presiding officer has used the tablet once (its key is enrolled) and signed
    out; witnesses then go through a simultaneous photo lineup and a sequential one."""
    officer = world.user("a1.officer")
    signin = gui.screen("signin")
    gui.type_into(signin.ids.username, officer.username)
    gui.type_into(signin.ids.password, PASSWORD)
    gui.tap(signin.ids.submit)
    gui.wait_for(lambda: gui.current == "home", what="the home screen")
    gui.app.sign_out(discard_unsent=True)
    reach(gui, "signin")

    ident = started(api, world, "simultaneous")
    lineup, _images = photo_lineup(api, ident)
    run_in_the_gui(gui, api, ident, lineup, first=True)

    ident = started(api, world, "sequential")
    run_in_the_gui(gui, api, ident, ident.lineup("live_person"), first=False)

    shots = {p.name for p in SCREENSHOTS.glob("witness-*.png")}
    names = ("code", "instructions", "lineup-simultaneous", "lineup-sequential", "choice")
    names += ("confidence", "done", "record", "signed")
    assert {f"witness-{n}-{lang}.png" for n in names for lang in LANGUAGES} <= shots
