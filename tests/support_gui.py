"""Driving the Kivy client on a real window under Xvfb: the X server, pumping the
event loop, tapping widgets with real touch events, screenshots.

Kivy reads its environment when first imported, so ``KIVY_NO_ARGS``,
``KIVY_NO_CONSOLELOG`` and ``KIVY_HOME`` are set when this module is imported,
and Kivy itself is imported only inside the fixtures, after ``DISPLAY`` is set.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

os.environ["KIVY_NO_ARGS"] = "1"
os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")
os.environ.setdefault("KIVY_HOME", tempfile.mkdtemp(prefix="fieldcase-kivy-home-"))
os.environ.setdefault("KIVY_NO_FILELOG", "1")

WINDOW_SIZE = (480, 900)
XVFB_SCREEN = "1280x1024x24"
XVFB_HELP = (
    "The GUI tests need Xvfb (a virtual X server). Install it (Debian/Ubuntu: "
    "apt install xvfb libgl1-mesa-dri libmtdev1) or run scripts/test as root, which installs it."
)


def _free_display() -> int:
    for number in range(90, 400):
        if (
            not Path(f"/tmp/.X{number}-lock").exists()
            and not Path(f"/tmp/.X11-unix/X{number}").exists()
        ):
            return number
    raise RuntimeError("no free X display number between :90 and :399")


@pytest.fixture(scope="session")
def xvfb() -> Iterator[str]:
    """A fresh Xvfb on a free display; ``DISPLAY`` points at it for the session."""
    executable = shutil.which("Xvfb")
    if executable is None:
        pytest.fail(XVFB_HELP, pytrace=False)
    number = _free_display()
    display = f":{number}"
    process = subprocess.Popen(
        [executable, display, "-screen", "0", XVFB_SCREEN, "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 20
    while not Path(f"/tmp/.X11-unix/X{number}").exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"Xvfb did not start on {display}: {process.stderr.read().decode()}")
        time.sleep(0.05)
    previous = os.environ.get("DISPLAY")
    os.environ["DISPLAY"] = display
    try:
        yield display
    finally:
        process.terminate()
        process.wait(timeout=10)
        if previous is None:
            os.environ.pop("DISPLAY", None)
        else:
            os.environ["DISPLAY"] = previous


def configure_kivy() -> None:
    """The window size of a phone in portrait; must run before the window exists."""
    try:
        from kivy.config import Config
    except ImportError:
        pytest.fail(
            "Kivy is not installed: pip install -e '.[test,mobile]' (scripts/test does).",
            pytrace=False,
        )
    Config.set("graphics", "width", str(WINDOW_SIZE[0]))
    Config.set("graphics", "height", str(WINDOW_SIZE[1]))
    Config.set("graphics", "resizable", "0")
    Config.set("input", "mouse", "mouse,disable_multitouch")


class Driver:
    """A running ``FieldcaseApp`` driven frame by frame from the test."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def pump(self, seconds: float = 0.2) -> None:
        from kivy.base import EventLoop

        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            EventLoop.idle()

    def wait_for(self, condition: Callable[[], Any], timeout: float = 60, what: str = "") -> Any:
        from kivy.base import EventLoop

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            EventLoop.idle()
            result = condition()
            if result:
                return result
        raise AssertionError(f"timed out waiting for {what or condition}")

    @property
    def current(self) -> str:
        return self.app.manager.current

    def screen(self, name: str | None = None) -> Any:
        return self.app.manager.get_screen(name or self.current)

    def tap(self, widget: Any) -> None:
        """A real touch (down and up) at the widget's centre, scrolled into view first."""
        from kivy.tests.common import UnitTestTouch
        from kivy.uix.scrollview import ScrollView

        scroller = widget.parent
        while scroller is not None and scroller is not scroller.parent:  # the window is its own
            if isinstance(scroller, ScrollView):
                break
            scroller = scroller.parent
        window = self.app.root_window
        for _ in range(20):  # a busy machine may lay the screen out over several frames
            if isinstance(scroller, ScrollView):
                scroller.scroll_to(widget, padding=40, animate=False)
            self.pump(0.15)
            x, y = widget.to_window(*widget.center)
            if 0 <= x <= window.width and 0 <= y <= window.height:
                break
        assert 0 <= x <= self.app.root_window.width and 0 <= y <= self.app.root_window.height, (
            f"{widget} is off screen at {(x, y)}"
        )
        touch = UnitTestTouch(x, y)
        touch.touch_down()
        self.pump(0.05)
        touch.touch_up()
        self.pump(0.2)

    def type_into(self, field: Any, text: str) -> None:
        """Focus the field's input and insert the text as the keyboard would."""
        field.input.focus = True
        field.input.select_all()
        field.input.delete_selection()
        field.input.insert_text(text)
        field.input.focus = False
        self.pump(0.05)

    def screenshot(self, path: Path) -> Path:
        """The whole window as a PNG at ``path``."""
        from kivy.core.window import Window

        for widget in list(Window.children):
            if type(widget).__name__ == "Toast":
                Window.remove_widget(widget)
        self.pump(0.4)
        path.parent.mkdir(parents=True, exist_ok=True)
        written = Path(Window.screenshot(name=str(path.with_name(path.stem + "-tmp.png"))))
        written.replace(path)
        return path


@contextmanager
def running_app(server: str, data_dir: Path) -> Iterator[Driver]:
    """The field client on the virtual screen, talking to ``server``; stopped afterwards."""
    configure_kivy()
    from kivy.base import EventLoop

    from mobile.app import FieldcaseApp

    app = FieldcaseApp(data_dir=data_dir, server_url=server)
    app._run_prepare()
    driver = Driver(app)
    driver.pump(0.5)
    try:
        yield driver
    finally:
        app.stop()
        EventLoop.close()
