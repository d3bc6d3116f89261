"""Transcript and signing: questions and answers from the template's question bank,
a signature pad per required signer (strokes kept as vector data, rendered to PNG),
and the device signs what it submits."""

from __future__ import annotations

import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kivy.properties import ListProperty, NumericProperty, StringProperty

from mobile.i18n import _
from mobile.screens.base import BaseScreen

SIGNERS = ("party", "officer")


def signer_label(role: str) -> str:
    return {"party": _("Person questioned"), "officer": _("Officer")}[role]


class TranscriptScreen(BaseScreen):
    case_id = StringProperty("")
    message = StringProperty("")
    signer_index = NumericProperty(0)
    signatures = ListProperty([])

    def open(self, case_id: str = "", **_arguments: Any) -> None:
        self.case_id = case_id
        self.message = ""
        self.signer_index = 0
        self.signatures = []
        self.ids.pad.clear()
        self.ids.questions.text = ""
        self.ids.answers.text = ""

    @property
    def signer(self) -> str:
        return SIGNERS[min(self.signer_index, len(SIGNERS) - 1)]

    def accept_signature(self) -> None:
        pad = self.ids.pad
        if pad.is_empty:
            self.message = _("Sign in the box first.")
            return
        folder = Path(tempfile.gettempdir()) / "fieldcase-signatures"
        folder.mkdir(exist_ok=True)
        image = pad.export_png(folder / f"{uuid.uuid4()}.png")
        self.signatures.append(
            {
                "signer_role": self.signer,
                "strokes": [list(s) for s in pad.strokes],
                "image": str(image),
            }
        )
        pad.clear()
        self.signer_index += 1
        self.message = ""

    def save(self) -> None:
        if not self.ids.answers.text.strip():
            self.ids.answers.error = _("Required")
            return
        self.ids.answers.error = ""
        if len(self.signatures) < len(SIGNERS):
            self.message = _("Every signer signs before the transcript is saved.")
            return
        self.state.store.save_draft(
            f"transcript:{self.case_id}:{uuid.uuid4()}",
            {
                "case_id": self.case_id,
                "questions": self.ids.questions.text,
                "answers": self.ids.answers.text,
                "signatures": list(self.signatures),
            },
            datetime.now(UTC).isoformat(),
        )
        self.app.notify(_("Transcript saved and signed on this device."))
        self.app.back()
