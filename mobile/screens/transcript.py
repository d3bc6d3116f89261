"""Transcript and signing: a document filled from its template and question bank
(cached from the server), a signature pad per required signer (strokes kept as
vector data, rendered to PNG), a fingerprint photo per signer; saving queues the
transcript and its signatures in the outbox, where the device signs them."""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path
from typing import Any

from kivy.properties import BooleanProperty, ListProperty, NumericProperty, StringProperty
from kivy.uix.filechooser import FileChooserListView
from kivy.uix.popup import Popup

from mobile.i18n import _, label
from mobile.screens.base import BaseScreen
from mobile.services.forms import FormErrors
from mobile.widgets import Field

SECOND_OFFICER = "second_officer"


def signer_order(roles: list[str]) -> list[str]:
    """The person questioned signs first, then the officers and anyone else."""
    return sorted(roles, key=lambda role: role != "party")


class TranscriptScreen(BaseScreen):
    case_id = StringProperty("")
    message = StringProperty("")
    signer_index = NumericProperty(0)
    signers = ListProperty([])
    signer_text = StringProperty("")
    signatures = ListProperty([])
    kind_values = ListProperty([])
    kind_text = StringProperty("")
    person_values = ListProperty([])
    person_text = StringProperty("")
    colleague_values = ListProperty([])
    colleague_text = StringProperty("")
    fingerprint = StringProperty("")
    locked = BooleanProperty(False)
    second_officer_turn = BooleanProperty(False)

    def open(self, case_id: str = "", **_arguments: Any) -> None:
        self.case_id = case_id
        self.message = ""
        self._kinds = self.state.transcript_kinds(case_id)
        self._persons = self.state.case_persons(case_id)
        me = (self.state.user or {}).get("id")
        self._colleagues = [u for u in self.state.known_officers() if u["id"] != me]
        self.kind_values = [label(k["label"]) for k in self._kinds]
        self.person_values = [f"{p['name']} ({p['role']})" for p in self._persons]
        self.colleague_values = [u["display_name"] for u in self._colleagues]
        self.colleague_text = self.colleague_values[0] if self.colleague_values else ""
        self.person_text = self.person_values[0] if self.person_values else ""
        self.kind_text = ""
        for kind in self._kinds:
            if self._begin(kind["id"]):
                self.kind_text = label(kind["label"])
                break
        else:
            self._clear(_("No document can be started here yet (templates or persons missing)."))

    # Choosing the document

    def choose_kind(self, text: str) -> None:
        kind = next((k for k in self._kinds if label(k["label"]) == text), None)
        if kind is not None and text != self.kind_text:
            self.kind_text = text
            self._begin(kind["id"])

    def choose_person(self, text: str) -> None:
        if text != self.person_text:
            self.person_text = text
            kind = next((k for k in self._kinds if label(k["label"]) == self.kind_text), None)
            if kind is not None:
                self._begin(kind["id"])

    def _person_id(self) -> str | None:
        for person, text in zip(self._persons, self.person_values, strict=True):
            if text == self.person_text:
                return person["id"]
        return None

    def _clear(self, message: str) -> None:
        self.transcript: dict[str, Any] | None = None
        self._inputs: dict[str, tuple[str, Any, Field]] = {}
        self.ids.form.clear_widgets()
        self.signers = []
        self.signer_index = 0
        self.signatures = []
        self.locked = False
        self.fingerprint = ""
        self.signer_text = ""
        self.ids.pad.clear()
        self.message = message

    def _begin(self, kind: str) -> bool:
        """Start a transcript of ``kind``: its form from the template."""
        self._clear("")
        try:
            transcript = self.state.start_transcript(self.case_id, kind, self._person_id())
        except FormErrors:
            return False
        self.transcript = transcript
        form = self.ids.form
        for spec in transcript["header"]:
            self._add("header", spec["key"], Field(label=label(spec["label"])))
        if transcript["body"] == "sections":
            for spec in transcript["sections"]:
                field = Field(label=label(spec["label"]), multiline=True, text=spec["text"])
                self._add("sections", spec["key"], field)
        elif transcript["body"] == "qa":
            if transcript["rights_notice"]:
                field = Field(label=_("Answer to the rights notice"), multiline=True)
                self._add("rights_answer", "", field)
            for question in transcript["questions"]:
                field = Field(label=question["text"], multiline=True)
                field.hint = _("Leave empty to skip this question.")
                self._add("qa", question["id"], field, question["text"])
        for _kind, _key, field in self._inputs.values():
            form.add_widget(field)
        self.signers = signer_order(transcript["signers"])
        self._show_signer()
        return True

    def _add(self, part: str, key: str, field: Field, question: str = "") -> None:
        self._inputs[f"{part}:{key}"] = (part, (key, question), field)

    def _show_signer(self) -> None:
        if self.signer_index >= len(self.signers) or self.transcript is None:
            self.signer_text = ""
            self.second_officer_turn = False
            return
        role = self.signers[self.signer_index]
        self.second_officer_turn = role == SECOND_OFFICER
        self.signer_text = label(self.transcript["signer_labels"].get(role)) or role

    # Signing

    def take_fingerprint(self) -> None:
        """A fingerprint photo: the camera through plyer, else the file picker."""
        if self.app.capture_photo(self._fingerprint_taken) is None:
            chooser = FileChooserListView(path=str(Path.home()), filters=["*.png", "*.jpg"])
            popup = Popup(title=_("Choose a file"), content=chooser, size_hint=(0.95, 0.9))

            def chosen(_chooser: Any, selection: list[str], _touch: Any) -> None:
                self._fingerprint_taken(selection[0])
                popup.dismiss()

            chooser.bind(on_submit=chosen)
            popup.open()

    def _fingerprint_taken(self, path: str) -> None:
        self.fingerprint = path

    def _signer_identity(self, role: str) -> tuple[str, str | None] | None:
        """The signer's name and user id (officers sign as users)."""
        if role == "officer":
            user = self.state.user or {}
            return user.get("display_name", ""), user.get("id")
        if role == SECOND_OFFICER:
            chosen = next(
                (u for u in self._colleagues if u["display_name"] == self.colleague_text), None
            )
            return (chosen["display_name"], chosen["id"]) if chosen else None
        person = next((p for p in self._persons if p["id"] == self._person_id()), None)
        return ((person or {}).get("name", ""), None) if role == "party" else ("", None)

    def accept_signature(self) -> None:
        pad = self.ids.pad
        if pad.is_empty:
            self.message = _("Sign in the box first.")
            return
        if self.signer_index >= len(self.signers):
            return
        role = self.signers[self.signer_index]
        identity = self._signer_identity(role)
        if identity is None:
            self.message = _("The second officer must have signed in on this device once.")
            return
        folder = Path(tempfile.gettempdir()) / "fieldcase-signatures"
        folder.mkdir(exist_ok=True)
        image = pad.export_png(folder / f"{uuid.uuid4()}.png")
        self.signatures.append(
            {
                "signer_role": role,
                "signer_name": identity[0],
                "signer_user_id": identity[1],
                "strokes": [list(s) for s in pad.strokes],
                "image": str(image),
                "fingerprint": self.fingerprint or None,
            }
        )
        self._lock_form(True)
        self.fingerprint = ""
        pad.clear()
        self.signer_index += 1
        self._show_signer()
        self.message = ""

    def clear_signatures(self) -> None:
        """Start the signatures again (to change the text, which they cover)."""
        self.signatures = []
        self.signer_index = 0
        self._lock_form(False)
        self._show_signer()

    def _lock_form(self, locked: bool) -> None:
        """The text is fixed while signatures cover it."""
        self.locked = locked
        for _part, _key, field in self._inputs.values():
            field.disabled = locked

    # Saving

    def _written(self) -> dict[str, Any]:
        written: dict[str, Any] = {"header": {}, "sections": {}, "qa": [], "rights_answer": None}
        for part, (key, question), field in self._inputs.values():
            text = field.text.strip()
            field.error = ""
            if part == "header":
                written["header"][key] = text
            elif part == "sections":
                written["sections"][key] = text
            elif part == "rights_answer":
                written["rights_answer"] = text
            elif text:
                written["qa"].append({"id": key, "question": question, "answer": text})
        return written

    def save(self) -> None:
        if self.transcript is None:
            return
        if len(self.signatures) < len(self.signers):
            self.message = _("Every signer signs before the transcript is saved.")
            return
        written = self._written()
        try:
            item = self.state.save_transcript(self.transcript["key"], **written)
        except FormErrors as error:
            for part, (key, _question), field in self._inputs.values():
                problem = error.errors.get(part)
                if isinstance(problem, dict):
                    field.error = " ".join(problem.get(key, []))
                elif problem:
                    field.error = " ".join(problem)
            self.message = _("Please complete the marked fields.")
            return
        for signature in self.signatures:
            self.state.sign(
                item.id,
                signature["signer_role"],
                signature["signer_name"],
                signature["strokes"],
                Path(signature["image"]).read_bytes(),
                signer_user_id=signature["signer_user_id"],
                fingerprint=signature["fingerprint"],
            )
            Path(signature["image"]).unlink(missing_ok=True)
        self.app.notify(_("Transcript saved and signed on this device."))
        self.app.back()
