#!/usr/bin/env python3
"""Compile the client's gettext catalogues (``mobile/locale/*/LC_MESSAGES/*.po``) to ``.mo``.

A small equivalent of CPython's ``Tools/i18n/msgfmt.py`` (not installed with
Python): it reads the subset of the PO format the catalogues use — ``msgid`` /
``msgstr`` with continuation lines and comments — and writes a GNU ``.mo`` file.
Run it after editing a ``.po`` file; the tests check that the ``.mo`` files are current.
"""

from __future__ import annotations

import ast
import struct
import sys
from pathlib import Path

LOCALE_DIR = Path(__file__).resolve().parent.parent / "mobile" / "locale"


def parse_po(text: str) -> dict[str, str]:
    """The ``msgid -> msgstr`` pairs of a PO file (the header included under ``""``)."""
    messages: dict[str, str] = {}
    section = None
    msgid = msgstr = ""

    def flush() -> None:
        if section == "msgstr":
            messages[msgid] = msgstr

    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("msgid "):
            flush()
            section, msgid, msgstr = "msgid", ast.literal_eval(line[6:]), ""
        elif line.startswith("msgstr "):
            section, msgstr = "msgstr", ast.literal_eval(line[7:])
        elif line.startswith('"'):
            if section == "msgid":
                msgid += ast.literal_eval(line)
            elif section == "msgstr":
                msgstr += ast.literal_eval(line)
        else:
            raise ValueError(f"unsupported PO line: {raw!r}")
    flush()
    return messages


def mo_bytes(messages: dict[str, str]) -> bytes:
    """A GNU ``.mo`` file (little endian, no hash table) of ``messages``."""
    keys = sorted(messages)
    ids = [k.encode() for k in keys]
    strs = [messages[k].encode() for k in keys]
    header_size = 7 * 4
    table_size = len(keys) * 8
    ids_start = header_size + 2 * table_size
    id_table, str_table = [], []
    offset = ids_start
    for data in ids:
        id_table.append((len(data), offset))
        offset += len(data) + 1
    for data in strs:
        str_table.append((len(data), offset))
        offset += len(data) + 1
    output = struct.pack(
        "<7I", 0x950412DE, 0, len(keys), header_size, header_size + table_size, 0, 0
    )
    for length, start in id_table + str_table:
        output += struct.pack("<2I", length, start)
    return output + b"".join(d + b"\0" for d in ids) + b"".join(d + b"\0" for d in strs)


def compile_all(locale_dir: Path = LOCALE_DIR) -> list[Path]:
    written = []
    for po in sorted(locale_dir.glob("*/LC_MESSAGES/*.po")):
        mo = po.with_suffix(".mo")
        mo.write_bytes(mo_bytes(parse_po(po.read_text(encoding="utf-8"))))
        written.append(mo)
    return written


if __name__ == "__main__":
    for path in compile_all():
        print(path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path)
    sys.exit(0)
