"""Witness mode: the instructions, in the witness's language, read and acknowledged
before any member is shown."""

from __future__ import annotations

from kivy.properties import StringProperty

from mobile.i18n import label
from mobile.screens.witness import WitnessScreen
from mobile.services.witness import WitnessView


class WitnessInstructionsScreen(WitnessScreen):
    text = StringProperty("")

    def shown(self, view: WitnessView) -> None:
        self.refresh()

    def refresh(self) -> None:
        self.text = label(self.view.instructions)
