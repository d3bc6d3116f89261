"""The client's colours and sizes, used by every ``.kv`` file
(``#:import theme mobile.widgets.theme``)."""

from __future__ import annotations

from kivy.metrics import dp, sp


def rgba(hex_colour: str, alpha: float = 1.0) -> tuple[float, float, float, float]:
    value = hex_colour.lstrip("#")
    red, green, blue = (int(value[i : i + 2], 16) / 255 for i in (0, 2, 4))
    return (red, green, blue, alpha)


PRIMARY = rgba("#1F3A5F")
PRIMARY_LIGHT = rgba("#2F5A8F")
PRIMARY_DOWN = rgba("#142740")
BACKGROUND = rgba("#EEF1F5")
SURFACE = rgba("#FFFFFF")
BORDER = rgba("#D5DBE3")
TEXT = rgba("#1C2430")
MUTED = rgba("#64707F")
ON_PRIMARY = rgba("#FFFFFF")
SUCCESS = rgba("#2E7D32")
WARNING = rgba("#E09100")
DANGER = rgba("#C62828")
SUBTLE = rgba("#E3E8EF")

TOUCH = dp(52)
ROW = dp(64)
RADIUS = dp(10)
PADDING = dp(16)
SPACING = dp(10)
TITLE = sp(20)
BODY = sp(16)
SMALL = sp(13)
