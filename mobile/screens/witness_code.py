"""Witness mode, first step: the witness's one-time code (no officer sign-in needed)."""

from __future__ import annotations

from typing import Any

from mobile.i18n import _
from mobile.screens.witness import WitnessScreen
from mobile.services.witness import WitnessView

CODE_LENGTHS = range(6, 13)


class WitnessCodeScreen(WitnessScreen):
    def open(self, **_arguments: Any) -> None:
        self.ids.code.text = ""
        self.message = ""
        self.busy = False

    def submit(self) -> None:
        code = self.ids.code.text.strip()
        if not (code.isdigit() and len(code) in CODE_LENGTHS):
            self.message = _("Enter the code you were given.")
            return
        if not self.state.server_url:
            self.message = _("This tablet has no server address: an officer signs in on it once.")
            return
        self.busy = True
        self.message = ""
        self.app.start_witness(code)

    def shown(self, view: WitnessView) -> None:
        self.ids.code.text = ""
