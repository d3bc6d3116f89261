"""What every screen shares: its ``.kv`` file beside its module, the app and its state."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from kivy.app import App
from kivy.lang import Builder
from kivy.uix.screenmanager import Screen


def load_kv(screen_class: type) -> None:
    """Load the ``.kv`` file that sits beside a screen's module (once)."""
    module = sys.modules[screen_class.__module__]
    path = str(Path(module.__file__ or "").with_suffix(".kv"))
    if path not in Builder.files:
        Builder.load_file(path)


class BaseScreen(Screen):
    """``open(**arguments)`` receives what the caller passes to ``app.show``;
    ``refresh()`` redraws from the app state (on entering, and after sync events)."""

    @property
    def app(self) -> Any:
        return App.get_running_app()

    @property
    def state(self) -> Any:
        return self.app.state

    def open(self, **arguments: Any) -> None:
        pass

    def refresh(self) -> None:
        pass
