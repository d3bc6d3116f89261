"""Witness mode: the identification record, read and signed by the witness on the
signature pad of the transcript screen (strokes and their PNG); the tablet's
device key signs the submission."""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path
from typing import Any

from kivy.clock import Clock
from kivy.properties import StringProperty

from mobile.i18n import _
from mobile.screens.witness import WitnessScreen
from mobile.services.witness import WitnessView

POLL_SECONDS = 4.0


class WitnessRecordScreen(WitnessScreen):
    text = StringProperty("")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._poll = Clock.schedule_interval(self._ask_again, POLL_SECONDS)
        self._poll.cancel()

    def shown(self, view: WitnessView) -> None:
        text = "\n".join(view.record_lines)
        if text != self.text:
            self.ids.pad.clear()
        self.text = text

    def on_enter(self, *_args: Any) -> None:
        self._poll()

    def on_leave(self, *_args: Any) -> None:
        self._poll.cancel()
        self.ids.pad.clear()

    def _ask_again(self, _dt: float) -> None:
        if not self.view.record_available and self.flow is not None and not self.flow.busy:
            self.flow.refresh()

    def sign(self) -> None:
        pad = self.ids.pad
        if pad.is_empty:
            self.message = _("Sign in the box first.")
            return
        folder = Path(tempfile.gettempdir()) / "fieldcase-signatures"
        folder.mkdir(exist_ok=True)
        path = pad.export_png(folder / f"{uuid.uuid4()}.png")
        image = path.read_bytes()
        path.unlink(missing_ok=True)
        self.call("sign", [list(stroke) for stroke in pad.strokes], image)
