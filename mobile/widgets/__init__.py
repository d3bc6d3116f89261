"""Reusable widgets of the client: buttons, form fields, cards, rows, the top bar,
the status bar and the signature pad. Their look is in ``widgets.kv``."""

from __future__ import annotations

from pathlib import Path

from kivy.animation import Animation
from kivy.clock import Clock
from kivy.core.window import Window
from kivy.lang import Builder
from kivy.properties import (
    BooleanProperty,
    ListProperty,
    NumericProperty,
    ObjectProperty,
    StringProperty,
)
from kivy.uix.behaviors import ButtonBehavior
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.button import Button
from kivy.uix.label import Label

from mobile.widgets import theme
from mobile.widgets.signature import SignaturePad

__all__ = [
    "Badge",
    "Card",
    "DangerButton",
    "EmptyState",
    "Field",
    "FlatButton",
    "ListRow",
    "PrimaryButton",
    "SectionTitle",
    "SignaturePad",
    "StatusBar",
    "Toast",
    "TopBar",
    "load",
    "theme",
]


class PrimaryButton(Button):
    pass


class FlatButton(Button):
    pass


class DangerButton(Button):
    pass


class Card(BoxLayout):
    pass


class SectionTitle(Label):
    pass


class EmptyState(Label):
    shown = BooleanProperty(True)


class Badge(Label):
    colour = ListProperty([0, 0, 0, 1])


class Field(BoxLayout):
    """A labelled text input; ``text`` is the input's text."""

    label = StringProperty("")
    hint = StringProperty("")
    text = StringProperty("")
    multiline = BooleanProperty(False)
    password = BooleanProperty(False)
    error = StringProperty("")
    input = ObjectProperty(None)


class ListRow(ButtonBehavior, BoxLayout):
    """A tappable row: a title, a line below it and a badge on the right."""

    title = StringProperty("")
    subtitle = StringProperty("")
    badge = StringProperty("")
    badge_colour = ListProperty([0, 0, 0, 0])
    key = StringProperty("")


class TopBar(BoxLayout):
    """The screen title, with a back button when ``back`` is set; dispatches ``on_back``."""

    title = StringProperty("")
    show_back = BooleanProperty(True)
    action_text = StringProperty("")
    __events__ = ("on_back", "on_action")

    def on_back(self) -> None:
        pass

    def on_action(self) -> None:
        pass


class StatusBar(BoxLayout):
    """Online or offline, the number of waiting outbox items and a progress bar per upload."""

    online = BooleanProperty(False)
    waiting = NumericProperty(0)
    failed = NumericProperty(0)
    uploads = ListProperty([])
    """``[(title, fraction), ...]`` of the uploads in progress."""

    def on_uploads(self, _bar: StatusBar, uploads: list[tuple[str, float]]) -> None:
        box = self.ids.uploads
        box.clear_widgets()
        for title, fraction in uploads:
            box.add_widget(UploadBar(title=title, fraction=fraction))


class Toast(Label):
    """A message floating above the bottom of the window for a few seconds."""

    SECONDS = 3.5

    def show(self) -> None:
        Window.add_widget(self)
        Clock.schedule_once(lambda _dt: self._fade(), self.SECONDS)

    def _fade(self) -> None:
        animation = Animation(opacity=0, duration=0.4)
        animation.bind(on_complete=lambda *_a: Window.remove_widget(self))
        animation.start(self)


class UploadBar(BoxLayout):
    title = StringProperty("")
    fraction = NumericProperty(0.0)


def load() -> None:
    Builder.load_file(str(Path(__file__).with_name("widgets.kv")))
