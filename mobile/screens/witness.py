"""What the witness screens share: the step each screen shows, large type, the member
tile, error messages in words, and leaving the witness mode.

The witness screens show what the flow (``mobile.services.witness``) hands the
app; they call the flow through the app and never touch the network. Every
member looks the same: a tile with the position the server gave this witness
(and the photo, for photo lineups); nothing else about a member is on screen.
"""

from __future__ import annotations

from io import BytesIO
from typing import Any

from kivy.core.image import Image as CoreImage
from kivy.graphics.texture import Texture
from kivy.metrics import dp, sp
from kivy.properties import BooleanProperty, ObjectProperty, StringProperty
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.button import Button
from kivy.uix.popup import Popup

from mobile.i18n import _
from mobile.screens.base import BaseScreen
from mobile.services.witness import Member, WitnessView

TITLE = sp(28)
BODY = sp(22)
BUTTON = dp(76)

STEP_SCREENS = {
    "code": "witness_code",
    "waiting": "witness_wait",
    "done": "witness_wait",
    "ended": "witness_wait",
    "instructions": "witness_instructions",
    "lineup": "witness_lineup",
    "choice": "witness_choice",
    "confidence": "witness_confidence",
    "record": "witness_record",
}


def error_text(view: WitnessView) -> str:
    """The message for the view's error, in the current language ("" for none)."""
    messages = {
        "code_refused": _("This code is not valid. Check it with the officer."),
        "rate_limited": _("Too many attempts. Wait a minute and try again."),
        "offline": _("The server could not be reached. Try again."),
        "not_identifier": _("This code is not for an identification witness."),
        "session_ended": _("This identification session has ended."),
        "server": _("The server could not complete the request. Try again."),
        "device_not_enrolled": _(
            "This tablet is not registered: an officer signs in on it once first."
        ),
        "record_not_ready": _("The record changed or is not ready yet. Read it again."),
    }
    if view.error == "refused":
        return _("Not accepted: {reason}").format(reason=view.detail)
    return messages.get(view.error or "", "")


def texture_of(image: bytes | None) -> Texture | None:
    """A member's photo as a texture (PNG or JPEG)."""
    if not image:
        return None
    extension = "png" if image.startswith(b"\x89PNG") else "jpg"
    return CoreImage(BytesIO(image), ext=extension).texture


def follow(app: Any, view: WitnessView) -> None:
    """Show the screen of the view's step, with the view in it."""
    name = STEP_SCREENS[view.step]
    screen = app.screen(name)
    screen.show_view(view)
    if app.manager.current != name:
        app.show(name)


class MemberTile(BoxLayout):
    """One member, styled exactly like every other: its position label (as the server
    gave it) and its photo, if any."""

    label = StringProperty("")
    texture = ObjectProperty(None, allownone=True)

    @classmethod
    def of(cls, member: Member, **kwargs: Any) -> MemberTile:
        return cls(label=member.label, texture=texture_of(member.image), **kwargs)


class WitnessButton(Button):
    pass


class WitnessFlatButton(Button):
    pass


class WitnessScreen(BaseScreen):
    """A step of the witness mode: ``show_view`` hands it the flow's view. The view's
    fields the ``.kv`` rules read are copied into properties (a rule does not see a
    plain object's attributes change)."""

    view = ObjectProperty(WitnessView())
    step = StringProperty("code")
    presentation = StringProperty("simultaneous")
    record_available = BooleanProperty(False)
    busy = BooleanProperty(False)
    message = StringProperty("")

    @property
    def flow(self) -> Any:
        return self.app.witness

    def show_view(self, view: WitnessView) -> None:
        self.view = view
        self.step = view.step
        self.presentation = view.presentation
        self.record_available = view.record_available
        self.busy = False
        self.message = error_text(view)
        self.shown(view)

    def shown(self, view: WitnessView) -> None:
        """Redraw from ``view`` (each screen its own)."""

    def call(self, action: str, *arguments: Any) -> None:
        """Ask the flow for a step; the screen waits for the next view."""
        if self.flow is None or self.busy:
            return
        self.busy = True
        self.message = ""
        getattr(self.flow, action)(*arguments)

    def confirm_leave(self) -> None:
        """Leaving ends the witness's turn on this tablet: asked once more."""
        box = BoxLayout(orientation="vertical", spacing=dp(10), padding=dp(10))
        popup = Popup(title=_("End the witness mode?"), content=box, size_hint=(0.9, None))
        popup.height = dp(230)
        stay = WitnessFlatButton(text=_("Continue"))
        leave = WitnessButton(text=_("End the witness mode"))
        stay.bind(on_release=lambda *_a: popup.dismiss())
        leave.bind(on_release=lambda *_a: (popup.dismiss(), self.app.leave_witness_mode()))
        box.add_widget(stay)
        box.add_widget(leave)
        popup.open()
