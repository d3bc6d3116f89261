"""The Kivy application: the screens in a ScreenManager, wired to the app state and
its sync worker.

The sync worker runs in its own thread and reports ``SyncEvent``s through
``on_sync_event``; they are handed to the UI thread with ``Clock.schedule_once``,
and bursts of them (upload progress, a drained outbox) collapse into one
refresh of the visible screen and the status bar through a ``Clock`` trigger.
Screens call the app state only; they never touch the network.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from kivy.app import App
from kivy.clock import Clock, ClockEvent
from kivy.core.window import Window
from kivy.properties import BooleanProperty, ListProperty, NumericProperty, StringProperty
from kivy.uix.screenmanager import NoTransition, ScreenManager
from kivy.uix.scrollview import ScrollView

from mobile import fonts, i18n, widgets
from mobile.screens import SCREENS, load_kv_files
from mobile.screens.witness import follow
from mobile.services.witness import WitnessFlow, tablet_key
from mobile.state import AppState

REFRESH_DELAY = 0.3
IDLE_CHECK_SECONDS = 5
DEFAULT_IDLE_LOCK_MINUTES = 10
IDLE_LOCK_SETTING = "ui.idle_lock_minutes"
READY_FILE = "FIELDCASE_READY_FILE"
"""Environment: a file the app writes once its first screen is on the window (the
wall-clock time and the screen's name), for measuring the cold start."""


class FieldcaseApp(App):
    """``data_dir`` holds the local store; ``server_url`` is the default server address."""

    title = "Fieldcase"
    language = StringProperty(i18n.DEFAULT_LANGUAGE)
    online = BooleanProperty(False)
    waiting = NumericProperty(0)
    failed = NumericProperty(0)
    uploads = ListProperty([])
    signed_in = BooleanProperty(False)
    username = StringProperty("")

    def __init__(
        self, *, data_dir: Path | None = None, server_url: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self._data_dir = data_dir
        self._server_url = server_url
        self.state: AppState | None = None
        self.manager: ScreenManager | None = None
        self._history: list[str] = []
        self._refresh = Clock.create_trigger(self._refresh_now, REFRESH_DELAY)
        self._last_activity = time.monotonic()
        self.font_path: Path | None = None
        self._location: tuple[float, float] | None = None
        self.witness: WitnessFlow | None = None
        self._idle_check: ClockEvent | None = None
        self._stopped = False

    # Building

    def build(self) -> ScreenManager:
        self.font_path = fonts.register_default_font()
        data_dir = self._data_dir or Path(self.user_data_dir)
        self.state = AppState.open(
            data_dir, on_event=self.on_sync_event, server_url=self._server_url
        )
        self.language = self.state.language
        i18n.set_language(self.language)
        widgets.load()
        load_kv_files()
        Window.clearcolor = widgets.theme.BACKGROUND
        self.manager = ScreenManager(transition=NoTransition())
        for name, screen_class in SCREENS.items():
            self.manager.add_widget(screen_class(name=name))
        Window.bind(on_touch_down=self._touched, on_key_down=self._touched)
        self._idle_check = Clock.schedule_interval(self._check_idle, IDLE_CHECK_SECONDS)
        self.state.start()
        self._start_gps()
        self.show("home" if self.state.signed_in else "signin")
        self._refresh_now()
        return self.manager

    def on_start(self) -> None:
        if os.environ.get(READY_FILE):
            Window.bind(on_flip=self._first_frame_shown)

    def _first_frame_shown(self, *_args: object) -> None:
        Window.unbind(on_flip=self._first_frame_shown)
        screen = self.manager.current if self.manager is not None else ""
        Path(os.environ[READY_FILE]).write_text(f"{time.time():.6f} {screen}\n")

    def on_stop(self) -> None:
        """Close the store; the app's clock events go with it, and sync events still on
        their way are dropped (another app may run in this process after, as in the GUI
        tests)."""
        self._stopped = True
        if self._idle_check is not None:
            self._idle_check.cancel()
        self._refresh.cancel()
        if self.witness is not None:
            self.witness.end()
            self.witness = None
        if self.state is not None:
            self.state.close()

    # Navigation

    def show(self, name: str, **arguments: Any) -> None:
        """Open a screen; ``arguments`` go to its ``open(...)``."""
        assert self.manager is not None
        screen = self.manager.get_screen(name)
        screen.open(**arguments)
        for widget in screen.walk():
            if isinstance(widget, ScrollView):
                widget.scroll_y = 1
        if self.manager.current != name:
            if name in ("home", "signin"):
                self._history = []
            else:
                self._history.append(self.manager.current)
        self.manager.current = name
        screen.refresh()

    def back(self) -> None:
        assert self.manager is not None
        target = self._history.pop() if self._history else "home"
        self.manager.current = target
        self.manager.get_screen(target).refresh()

    def screen(self, name: str) -> Any:
        assert self.manager is not None
        return self.manager.get_screen(name)

    # Language

    def set_language(self, language: str) -> None:
        assert self.state is not None
        i18n.set_language(language)
        self.state.set_language(language)
        self.language = language
        self._refresh_now()

    # Sync events: from the worker thread to the UI thread

    def on_sync_event(self, event: Any) -> None:
        """Called on the sync worker's thread."""
        Clock.schedule_once(lambda _dt: self._handle(event))

    def _handle(self, event: Any) -> None:
        assert self.manager is not None
        if self._stopped:
            return
        if event.kind == "online":
            self.online = True
        elif event.kind == "offline":
            self.online = False
        elif event.kind == "signed_in":
            self._last_activity = time.monotonic()
            self.screen("signin").signed_in()
            self.show("home")
        elif event.kind == "sign_in_failed":
            self.screen("signin").failed(event.detail)
        elif event.kind == "auth_required" and self.manager.current != "signin":
            self._lock_unless_witness()
        self._refresh()

    def _refresh_now(self, *_args: object) -> None:
        assert self.state is not None and self.manager is not None
        if self._stopped:
            return
        status = self.state.sync_status()
        self.online = bool(status.online)
        self.waiting = status.waiting
        self.failed = status.failed + status.conflicts
        self.uploads = [(title, fraction) for title, fraction in status.uploads]
        self.signed_in = self.state.signed_in
        self.username = self.state.username or ""
        self.manager.current_screen.refresh()

    # Idle lock

    def _touched(self, *_args: object) -> None:
        self._last_activity = time.monotonic()

    def idle_lock_minutes(self) -> int:
        assert self.state is not None
        value = self.state.store.get_setting(IDLE_LOCK_SETTING)
        return int(value) if value else DEFAULT_IDLE_LOCK_MINUTES

    def set_idle_lock_minutes(self, minutes: int) -> None:
        assert self.state is not None
        self.state.store.set_setting(IDLE_LOCK_SETTING, str(minutes))

    def _check_idle(self, _dt: float) -> None:
        assert self.manager is not None
        idle = time.monotonic() - self._last_activity
        if self.in_witness_mode or self.manager.current == "signin":
            return
        if idle > self.idle_lock_minutes() * 60:
            self.lock()

    def _lock_unless_witness(self) -> None:
        """The officer's sign-in ended: lock, except under a witness, who goes on."""
        if not self.in_witness_mode:
            self.lock()

    def lock(self) -> None:
        """Back to the sign-in screen; the outbox and its sending are untouched."""
        assert self.state is not None
        self.state.lock()
        self.show("signin", locked=True)

    # Witness mode: a witness takes part in an identification with a one-time code

    @property
    def in_witness_mode(self) -> bool:
        """On a witness screen, which shows nothing of the officer's (no idle lock there)."""
        return self.manager is not None and self.manager.current.startswith("witness")

    def enter_witness_mode(self) -> None:
        self.show("witness_code")

    def start_witness(self, code: str) -> None:
        """Join with the witness's code; the flow's views lead through the witness screens."""
        assert self.state is not None
        if self.witness is None:
            server = self.state.server_url or ""
            self.witness = WitnessFlow(
                server,
                tablet_key(self.state.store, self.state.worker.device, server),
                on_view=lambda view: follow(self, view),
                deliver=lambda done: Clock.schedule_once(lambda _dt: done()),
            )
        self.witness.join(code)

    def leave_witness_mode(self) -> None:
        """End the witness's turn: the participant token is forgotten."""
        assert self.state is not None
        if self.witness is not None:
            self.witness.end()
            self.witness = None
        self.show("signin", locked=self.state.locked)

    # Device features (plyer where the platform has them)

    def notify(self, message: str) -> None:
        """A short message at the bottom of the window, gone after a few seconds."""
        widgets.Toast(text=message).show()

    def locate(self) -> tuple[float, float] | None:
        """The last position the GPS reported, or ``None`` where there is no GPS."""
        return self._location

    def _start_gps(self) -> None:
        try:
            from plyer import gps

            gps.configure(on_location=self._on_location)
            gps.start(minTime=10_000, minDistance=10)
        except (ImportError, NotImplementedError):  # plyer's answer where there is no GPS
            self._location = None

    def _on_location(self, **fix: Any) -> None:
        self._location = (float(fix["lat"]), float(fix["lon"]))

    def capture_photo(self, on_done: Any) -> str | None:
        """Take a photo with the platform camera (plyer); ``None`` where there is none."""
        try:
            from plyer import camera

            target = Path(self.user_data_dir) / "captures" / f"{time.time_ns()}.jpg"
            target.parent.mkdir(parents=True, exist_ok=True)
            camera.take_picture(
                filename=str(target),
                on_complete=lambda path: Clock.schedule_once(lambda _dt: on_done(path)),
            )
        except (ImportError, NotImplementedError):  # plyer's answer where there is no camera
            return None
        return str(target)

    def sign_out(self, *, discard_unsent: bool = False) -> None:
        """Sign out; raises ``UnsentItems`` while items wait, unless ``discard_unsent``."""
        assert self.state is not None
        self.state.sign_out(discard_unsent=discard_unsent)
        self.show("signin")
        self._refresh_now()
