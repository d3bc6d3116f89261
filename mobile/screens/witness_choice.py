"""Witness mode: the answer — one position, "not present" or "don't know" — confirmed
once before it is sent. The positions are plain numbered buttons, all alike: every
position (simultaneous), or those the witness answered "yes" to (sequential)."""

from __future__ import annotations

from typing import Any

from kivy.properties import NumericProperty, StringProperty

from mobile.i18n import _
from mobile.screens.witness import WitnessButton, WitnessScreen
from mobile.services.witness import WitnessView

OUTCOMES = ("selected", "not_present", "dont_know")


class WitnessChoiceScreen(WitnessScreen):
    outcome = StringProperty("")
    position = NumericProperty(0)
    pending = StringProperty("")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._choosable: tuple[int, ...] = ()

    def shown(self, view: WitnessView) -> None:
        if view.choosable != self._choosable:
            self._choosable = view.choosable
            grid = self.ids.positions
            grid.clear_widgets()
            for position in view.choosable:
                button = WitnessButton(text=str(position))
                button.position = position
                button.bind(on_release=lambda b: self.pick("selected", b.position))
                grid.add_widget(button)
        self.refresh()

    def open(self, **_arguments: Any) -> None:
        self.outcome = ""
        self.position = 0
        self.refresh()

    def pick(self, outcome: str, position: int = 0) -> None:
        self.outcome = outcome
        self.position = position
        self.refresh()

    def refresh(self) -> None:
        """The answer picked, in words, for the witness to confirm."""
        if self.outcome == "selected":
            self.pending = _("Your answer: No. {position}").format(position=self.position)
        elif self.outcome == "not_present":
            self.pending = _("Your answer: the one I saw is not there")
        elif self.outcome == "dont_know":
            self.pending = _("Your answer: I don't know")
        else:
            self.pending = ""

    def confirm(self) -> None:
        if self.outcome in OUTCOMES:
            position = self.position if self.outcome == "selected" else None
            self.call("choose", self.outcome, position)
