"""Witness mode: how sure the witness is, in their own words and on a scale from 0 to
100, taken right after the answer. The scale starts unset, so that no value is
suggested."""

from __future__ import annotations

from typing import Any

from kivy.properties import BooleanProperty

from mobile.i18n import _
from mobile.screens.witness import WitnessScreen


class WitnessConfidenceScreen(WitnessScreen):
    scale_set = BooleanProperty(False)

    def open(self, **_arguments: Any) -> None:
        self.ids.statement.text = ""
        self.ids.scale.value = 50
        self.scale_set = False

    def scale_touched(self) -> None:
        self.scale_set = True
        self.message = ""

    def submit(self) -> None:
        statement = self.ids.statement.text.strip()
        if not statement:
            self.message = _("Say in your own words how sure you are.")
            return
        if not self.scale_set:
            self.message = _("Choose a number on the scale as well.")
            return
        self.call("state_confidence", statement, int(self.ids.scale.value))
