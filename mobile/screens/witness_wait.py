"""Witness mode: waiting for the officers (the screen asks the server again by itself),
and the end of the witness's turn."""

from __future__ import annotations

from typing import Any

from kivy.clock import Clock
from kivy.properties import StringProperty

from mobile.i18n import _
from mobile.screens.witness import WitnessScreen
from mobile.services.witness import WitnessView

POLL_SECONDS = 4.0


class WitnessWaitScreen(WitnessScreen):
    heading = StringProperty("")
    text = StringProperty("")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._poll = Clock.schedule_interval(self._ask_again, POLL_SECONDS)
        self._poll.cancel()

    def shown(self, view: WitnessView) -> None:
        self.refresh()

    def refresh(self) -> None:
        step = self.view.step
        if step == "waiting":
            self.heading = _("Please wait")
            self.text = _(
                "The officers are preparing the identification. This screen moves on by itself."
            )
        elif step == "done" and self.view.signed:
            self.heading = _("Thank you")
            self.text = _("The record is signed. Please hand the tablet to the officer.")
        elif step == "done":
            self.heading = _("Thank you")
            self.text = _(
                "Your answers are saved. When the record is ready, it appears here to sign."
            )
        else:
            self.heading = _("Session ended")
            self.text = _("Please hand the tablet to the officer.")

    def on_enter(self, *_args: Any) -> None:
        self._poll()

    def on_leave(self, *_args: Any) -> None:
        self._poll.cancel()

    def _ask_again(self, _dt: float) -> None:
        """While waiting for the officers, and for the record after the answers."""
        expecting = self.view.step == "waiting" or (
            self.view.step == "done" and not self.view.signed
        )
        if expecting and self.flow is not None and not self.flow.busy:
            self.flow.refresh()
