"""Identification (辨认) data: lineup kinds and their minimums, and the identifier's instructions.

Loaded from ``shared/identification.toml``; the backend enforces the minimums
and serves the instructions, and a client can show the same texts.
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from shared.workflow import Label

PRESENTATIONS = ("simultaneous", "sequential")
OUTCOMES = ("selected", "not_present", "dont_know")
"""The identifier's choice: a member, "not present" or "don't know"."""
ANSWERS = ("yes", "no")
"""The answer to each member in sequential presentation."""


class IdentificationDataError(ValueError):
    """``identification.toml`` is inconsistent."""


@dataclass(frozen=True)
class LineupKind:
    id: str
    label: Label
    minimum: int
    photo: bool
    person: bool


@dataclass(frozen=True)
class Article:
    law: str
    article: str

    def __str__(self) -> str:
        return f"{self.law} art. {self.article}"


@dataclass(frozen=True)
class IdentificationRules:
    kinds: Mapping[str, LineupKind]
    minimum_basis: Mapping[str, Article]
    """The article setting the minimums, by case type."""
    reuse_basis: Article
    paragraphs: Mapping[str, Label]

    def instructions(self, kind: str, presentation: str) -> Label:
        """The full instructions for a lineup of ``kind`` shown in ``presentation`` mode."""
        target = "person" if self.kinds[kind].person else "object"
        parts = [self.paragraphs[key] for key in (target, presentation, "closing")]
        return Label(zh="".join(p.zh for p in parts), en=" ".join(p.en for p in parts))


def instructions_sha256(text: Label) -> str:
    """What the log records of the instructions an identifier acknowledged."""
    return hashlib.sha256(f"{text.zh}\n{text.en}".encode()).hexdigest()


def _label(raw: Any, where: str) -> Label:
    try:
        return Label(zh=raw["zh"], en=raw["en"])
    except (KeyError, TypeError) as exc:
        raise IdentificationDataError(f"{where}: needs zh and en") from exc


def parse(raw: Mapping[str, Any]) -> IdentificationRules:
    kinds = {
        key: LineupKind(
            id=key,
            label=_label(spec.get("name"), f"lineup kind {key}"),
            minimum=int(spec["minimum"]),
            photo=bool(spec["photo"]),
            person=bool(spec["person"]),
        )
        for key, spec in raw["lineup_kinds"].items()
    }
    if any(kind.minimum < 2 for kind in kinds.values()):
        raise IdentificationDataError("a lineup needs at least a target and a filler")
    paragraphs = {
        key: _label(text, f"instructions {key}") for key, text in raw["instructions"].items()
    }
    missing = {"person", "object", "closing", *PRESENTATIONS} - set(paragraphs)
    if missing:
        raise IdentificationDataError(f"instructions: missing {sorted(missing)}")
    law = raw["law"]
    return IdentificationRules(
        kinds=kinds,
        minimum_basis={
            case_type: Article(law[case_type]["law"], law[case_type]["article"])
            for case_type in ("criminal", "administrative")
        },
        reuse_basis=Article(law["reuse"]["law"], law["reuse"]["article"]),
        paragraphs=paragraphs,
    )


@cache
def load_rules() -> IdentificationRules:
    text = resources.files("shared").joinpath("identification.toml").read_text("utf-8")
    return parse(tomllib.loads(text))
