"""Evidence capture: camera or microphone through plyer on Android, a file picker on
the desktop. The SHA-256 is taken on the device at capture; the file is queued and
uploaded with tus, and leaves the queue only when the server confirmed the hash."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kivy.properties import StringProperty
from kivy.uix.filechooser import FileChooserListView
from kivy.uix.popup import Popup

from mobile.i18n import _
from mobile.screens.base import BaseScreen

KINDS = ("photo", "audio", "video", "document", "other")


def kind_label(kind: str) -> str:
    return {
        "photo": _("Photo"),
        "audio": _("Audio"),
        "video": _("Video"),
        "document": _("Document"),
        "other": _("Other"),
    }[kind]


class EvidenceScreen(BaseScreen):
    case_id = StringProperty("")
    path = StringProperty("")
    kind = StringProperty("photo")
    message = StringProperty("")

    def open(self, case_id: str = "", **_arguments: Any) -> None:
        self.case_id = case_id
        self.path = ""
        self.kind = "photo"
        self.message = ""
        for name in ("place", "description"):
            self.ids[name].text = ""
            self.ids[name].error = ""

    def take_photo(self) -> None:
        """The camera through plyer where the platform has one, else the file picker."""
        path = self.app.capture_photo(self._picked)
        if path is None:
            self.pick_file()

    def pick_file(self) -> None:
        chooser = FileChooserListView(path=str(Path.home()), filters=["*"])
        popup = Popup(title=_("Choose a file"), content=chooser, size_hint=(0.95, 0.9))
        chooser.bind(
            on_submit=lambda _c, selection, _t: (self._picked(selection[0]), popup.dismiss())
        )
        popup.open()

    def _picked(self, path: str) -> None:
        self.path = path
        self.message = ""

    def save(self) -> None:
        if not self.path or not Path(self.path).is_file():
            self.message = _("Choose or capture a file first.")
            return
        place = self.ids.place.text.strip()
        self.ids.place.error = "" if place else _("Required")
        if not place:
            return
        location = self.app.locate()
        self.state.capture_evidence(
            self.case_id,
            self.path,
            self.kind,
            place,
            location[0] if location else None,
            location[1] if location else None,
            self.ids.description.text.strip() or None,
        )
        self.app.notify(
            _("Evidence saved with its SHA-256. It is uploaded when the server is reachable.")
        )
        self.app.back()
