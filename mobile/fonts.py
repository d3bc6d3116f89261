"""Find a font that renders Chinese and make it Kivy's default font.

Kivy's bundled Roboto has no CJK glyphs. The first font found wins:
``FIELDCASE_FONT`` (a path), a font bundled in ``mobile/fonts/``, then the
usual system locations on Linux, Android, Windows and macOS.
"""

from __future__ import annotations

import os
from pathlib import Path

BUNDLED_DIR = Path(__file__).resolve().parent / "fonts"
SYSTEM_FONTS = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    "/system/fonts/NotoSansCJK-Regular.ttc",
    "/system/fonts/NotoSansSC-Regular.otf",
    "/system/fonts/DroidSansFallback.ttf",
    "C:/Windows/Fonts/msyh.ttc",
    "C:/Windows/Fonts/simhei.ttf",
    "/System/Library/Fonts/PingFang.ttc",
    "/System/Library/Fonts/STHeiti Light.ttc",
    "/Library/Fonts/Arial Unicode.ttf",
)
MISSING_MESSAGE = (
    "No font with Chinese characters was found, so Chinese text would show as boxes. "
    "Install one (Debian/Ubuntu: apt install fonts-wqy-microhei; Fedora: "
    "google-noto-sans-cjk-fonts), put a .ttf/.otf/.ttc file into mobile/fonts/, "
    "or set FIELDCASE_FONT to the path of one."
)


class FontNotFound(RuntimeError):
    """No CJK font is available; the message says how to get one."""


def candidates() -> list[Path]:
    found = [Path(os.environ["FIELDCASE_FONT"])] if os.environ.get("FIELDCASE_FONT") else []
    if BUNDLED_DIR.is_dir():
        found += sorted(
            p for p in BUNDLED_DIR.iterdir() if p.suffix.lower() in (".ttf", ".otf", ".ttc")
        )
    return found + [Path(p) for p in SYSTEM_FONTS]


def find_cjk_font() -> Path:
    for path in candidates():
        if path.is_file():
            return path
    raise FontNotFound(MISSING_MESSAGE)


def register_default_font() -> Path:
    """Register the CJK font under Kivy's default font name (``Roboto``); returns its path."""
    from kivy.core.text import DEFAULT_FONT, LabelBase

    path = str(find_cjk_font())
    LabelBase.register(DEFAULT_FONT, path, path, path, path)
    return Path(path)
