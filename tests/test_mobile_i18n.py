"""The client's UI text: every message the screens use is translated in both catalogues,
and the compiled catalogues are current."""

from __future__ import annotations

import ast
import gettext
import importlib.util
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.one_backend  # the client's windows: the server's database plays no part

ROOT = Path(__file__).resolve().parent.parent
MOBILE = ROOT / "mobile"
LOCALE = MOBILE / "locale"
LANGUAGES = ("zh_CN", "en")
MESSAGE = re.compile(r'\b_\(\s*("(?:[^"\\]|\\.)*")')
PLACEHOLDER = re.compile(r"\{[^{}]*\}")


def _compiler():
    spec = importlib.util.spec_from_file_location(
        "compile_catalogues", ROOT / "scripts" / "compile_catalogues.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def ui_sources() -> list[Path]:
    """The screens, widgets and app: every .py and .kv file except the GUI-agnostic services."""
    files = [*MOBILE.rglob("*.py"), *MOBILE.rglob("*.kv")]
    return sorted(p for p in files if "services" not in p.relative_to(MOBILE).parts)


def used_messages() -> set[str]:
    found = set()
    for path in ui_sources():
        for match in MESSAGE.finditer(path.read_text(encoding="utf-8")):
            found.add(ast.literal_eval(match.group(1)))
    return found


def catalogue(language: str) -> dict[str, str]:
    po = LOCALE / language / "LC_MESSAGES" / "fieldcase.po"
    return _compiler().parse_po(po.read_text(encoding="utf-8"))


def test_the_screens_use_translated_text() -> None:
    assert len(used_messages()) > 100
    assert "Sign in" in used_messages()


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_message_is_translated(language: str) -> None:
    messages = catalogue(language)
    missing = sorted(m for m in used_messages() if not messages.get(m))
    assert missing == [], f"untranslated in {language}: {missing}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_no_stale_messages(language: str) -> None:
    stale = sorted(set(catalogue(language)) - used_messages() - {""})
    assert stale == [], f"messages no screen uses any more in {language}: {stale}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_translations_keep_the_placeholders(language: str) -> None:
    for msgid, msgstr in catalogue(language).items():
        assert sorted(PLACEHOLDER.findall(msgid)) == sorted(PLACEHOLDER.findall(msgstr)), msgid


def test_chinese_is_chinese() -> None:
    messages = catalogue("zh_CN")
    not_chinese = [k for k, v in messages.items() if k and not re.search(r"[\u4e00-\u9fff]", v)]
    assert not_chinese == []


@pytest.mark.parametrize("language", LANGUAGES)
def test_compiled_catalogue_is_current(language: str) -> None:
    compiler = _compiler()
    po = LOCALE / language / "LC_MESSAGES" / "fieldcase.po"
    expected = compiler.mo_bytes(compiler.parse_po(po.read_text(encoding="utf-8")))
    assert po.with_suffix(".mo").read_bytes() == expected, (
        "run scripts/compile_catalogues.py after editing a .po file"
    )
    translations = gettext.translation("fieldcase", localedir=LOCALE, languages=[language])
    assert translations.gettext("Sign in") == {"zh_CN": "登录", "en": "Sign in"}[language]


def test_runtime_switch() -> None:
    from mobile import i18n

    i18n.set_language("zh_CN")
    assert i18n._("Outbox") == "待发送"
    i18n.set_language("en")
    assert i18n._("Outbox") == "Outbox"
    assert i18n.label({"zh": "立案", "en": "Open"}) == "Open"


def test_a_cjk_font_is_found_and_can_be_chosen(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from mobile import fonts

    assert fonts.find_cjk_font().is_file()
    chosen = tmp_path / "chosen.ttf"
    chosen.write_bytes(b"font")
    monkeypatch.setenv("FIELDCASE_FONT", str(chosen))
    assert fonts.find_cjk_font() == chosen


def test_no_cjk_font_says_how_to_get_one(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from mobile import fonts

    monkeypatch.delenv("FIELDCASE_FONT", raising=False)
    monkeypatch.setattr(fonts, "BUNDLED_DIR", tmp_path)
    monkeypatch.setattr(fonts, "SYSTEM_FONTS", ())
    with pytest.raises(fonts.FontNotFound, match=r"fonts-wqy-microhei.*FIELDCASE_FONT"):
        fonts.find_cjk_font()
