"""UI text through gettext: catalogues in ``mobile/locale/<lang>/LC_MESSAGES/fieldcase.mo``.

``_("Sign in")`` translates into the current language. In ``.kv`` files the
current language is passed as a second, ignored argument —
``text: _("Sign in", app.language)`` — so that Kivy re-evaluates the rule when
the language changes at runtime.
"""

from __future__ import annotations

import gettext
from pathlib import Path

DOMAIN = "fieldcase"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
LANGUAGES = {"zh_CN": "简体中文", "en": "English"}
DEFAULT_LANGUAGE = "zh_CN"

_current: gettext.NullTranslations = gettext.NullTranslations()
_language = ""


def catalogue(language: str) -> gettext.NullTranslations:
    """The compiled catalogue of ``language``; a missing one is an error (all UI text is
    translated)."""
    return gettext.translation(DOMAIN, localedir=LOCALE_DIR, languages=[language])


def set_language(language: str) -> None:
    global _current, _language
    if language not in LANGUAGES:
        raise ValueError(f"unsupported language {language!r}")
    _current = catalogue(language)
    _language = language


def language() -> str:
    return _language


def _(message: str, *_rebind: object) -> str:
    """Translate ``message``; extra arguments only make kv rules depend on the language."""
    return _current.gettext(message)


def label(value: dict[str, str] | None) -> str:
    """Pick the right side of a ``{"zh": ..., "en": ...}`` label from the shared workflow data."""
    if not value:
        return ""
    if _language.startswith("zh"):
        return value.get("zh") or value.get("en") or ""
    return value.get("en") or value.get("zh") or ""
