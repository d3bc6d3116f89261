"""The signature pad: pen strokes kept as vector data and rendered to PNG."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from kivy.graphics import Color, Fbo, Line, Rectangle
from kivy.properties import ListProperty
from kivy.uix.widget import Widget

INK = (0.08, 0.12, 0.25, 1)
PEN_WIDTH = 2.0


class SignaturePad(Widget):
    """Records each stroke as ``[[x, y, t_ms], ...]`` in widget coordinates (origin bottom left),
    ``t_ms`` counted from the first touch; ``export_png`` renders the strokes on white."""

    strokes = ListProperty([])

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._started: float | None = None
        self._lines: dict[int, Line] = {}
        self.bind(strokes=self._redraw, size=self._redraw, pos=self._redraw)

    def _point(self, touch: Any) -> list[int]:
        now = time.monotonic()
        if self._started is None:
            self._started = now
        return [
            round(touch.x - self.x),
            round(touch.y - self.y),
            round((now - self._started) * 1000),
        ]

    def on_touch_down(self, touch: Any) -> bool:
        if not self.collide_point(*touch.pos):
            return super().on_touch_down(touch)
        touch.grab(self)
        self.strokes.append([self._point(touch)])
        touch.ud["signature_stroke"] = len(self.strokes) - 1
        return True

    def on_touch_move(self, touch: Any) -> bool:
        if touch.grab_current is not self:
            return super().on_touch_move(touch)
        index = touch.ud["signature_stroke"]
        if self.collide_point(*touch.pos):
            self.strokes[index] = [*self.strokes[index], self._point(touch)]
        return True

    def on_touch_up(self, touch: Any) -> bool:
        if touch.grab_current is not self:
            return super().on_touch_up(touch)
        touch.ungrab(self)
        return True

    def clear(self) -> None:
        self.strokes = []
        self._started = None

    @property
    def is_empty(self) -> bool:
        return not any(len(stroke) > 1 for stroke in self.strokes)

    def _redraw(self, *_args: object) -> None:
        self.canvas.after.clear()
        with self.canvas.after:
            Color(*INK)
            for stroke in self.strokes:
                points = [c for x, y, _t in stroke for c in (self.x + x, self.y + y)]
                if len(points) >= 4:
                    Line(points=points, width=PEN_WIDTH, cap="round", joint="round")

    def export_png(self, path: str | Path) -> Path:
        """Render the strokes, black on white, at the pad's size into a PNG file."""
        width, height = max(1, int(self.width)), max(1, int(self.height))
        fbo = Fbo(size=(width, height))
        with fbo:
            Color(1, 1, 1, 1)
            Rectangle(pos=(0, 0), size=(width, height))
            Color(*INK)
            for stroke in self.strokes:
                points = [c for x, y, _t in stroke for c in (x, y)]
                if len(points) >= 4:
                    Line(points=points, width=PEN_WIDTH, cap="round", joint="round")
        fbo.draw()
        target = Path(path)
        fbo.texture.save(str(target), flipped=False)
        return target
