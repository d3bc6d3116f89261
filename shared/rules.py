"""Supervision rule packs (预警规则): rules as data, loaded and validated from ``rules/*.toml``.

A pack holds the laws it cites (with their versions and effective dates), how
workflow actions become case facts, and the rules. A rule is either a
deadline measured from a case fact, or a predicate over the case's facts.
See ``rules/pack.toml`` for the format.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

RULES_DIR = Path(__file__).parent / "rules"

KINDS = ("warning", "alert", "completeness", "quality")
SEVERITIES = ("low", "medium", "high", "critical")
AUDIENCES = ("handler", "legal_officer", "leader", "centre")
UNITS = ("hours", "days", "months")
COUNTINGS = ("procedural", "custody")
OPS = ("eq", "ne", "lt", "gt")
PREDICATES = ("fact_without", "fact_where", "idle")
CASE_TYPES = ("administrative", "criminal")


class RulePackError(ValueError):
    """The rule pack does not validate."""


@dataclass(frozen=True)
class Law:
    key: str
    title: str
    version: str
    effective_from: date
    effective_to: date | None

    def in_force(self, day: date) -> bool:
        return self.effective_from <= day and (self.effective_to is None or day < self.effective_to)


@dataclass(frozen=True)
class Condition:
    """A test on one key of a fact's data; a missing key matches only ``ne``."""

    key: str
    op: str
    value: Any

    def matches(self, data: dict[str, Any]) -> bool:
        if self.key not in data or data[self.key] is None:
            return self.op == "ne"
        actual = data[self.key]
        if self.op == "eq":
            return actual == self.value
        if self.op == "ne":
            return actual != self.value
        try:
            return actual < self.value if self.op == "lt" else actual > self.value
        except TypeError:
            return False


@dataclass(frozen=True)
class Deadline:
    start: str
    amount: int
    unit: str
    counting: str
    until: tuple[str, ...]
    where: tuple[Condition, ...] = ()
    per_subject: bool = False
    exclude: tuple[str, ...] = ()
    extensions: tuple[str, ...] = ()


@dataclass(frozen=True)
class Predicate:
    type: str
    fact: str = ""
    where: tuple[Condition, ...] = ()
    missing: tuple[str, ...] = ()
    per_subject: bool = False
    grace_hours: int = 0
    idle_days: int = 0


@dataclass(frozen=True)
class Rule:
    id: str
    name: dict[str, str]
    kind: str
    severity: str
    case_types: tuple[str, ...]
    states: tuple[str, ...]
    law: Law
    article: str
    notify: tuple[str, ...]
    ahead_hours: int
    template: dict[str, str]
    unverified: bool
    source_note: str
    after_close: bool
    deadline: Deadline | None = None
    predicate: Predicate | None = None

    def in_force(self, day: date) -> bool:
        return self.law.in_force(day)


@dataclass(frozen=True)
class RulePack:
    id: str
    version: str
    escalate_to_legal_hours: int
    escalate_to_centre_hours: int
    laws: dict[str, Law]
    action_facts: dict[str, str]
    rules: dict[str, Rule] = field(default_factory=dict)


def _require(entry: dict[str, Any], key: str, where: str) -> Any:
    if key not in entry:
        raise RulePackError(f"{where}: missing {key!r}")
    return entry[key]


def _choice(value: Any, allowed: tuple[str, ...], where: str) -> str:
    if value not in allowed:
        raise RulePackError(f"{where}: {value!r} is not one of {allowed}")
    return value


def _texts(entry: dict[str, Any], key: str, where: str) -> dict[str, str]:
    texts = _require(entry, key, where)
    if not isinstance(texts, dict) or not texts.get("zh") or not texts.get("en"):
        raise RulePackError(f"{where}: {key} needs zh and en")
    return {"zh": texts["zh"], "en": texts["en"]}


def _conditions(items: list[dict[str, Any]], where: str) -> tuple[Condition, ...]:
    return tuple(
        Condition(
            _require(item, "key", where), _choice(item.get("op", "eq"), OPS, where), item["value"]
        )
        for item in items
    )


def _law(key: str, entry: dict[str, Any]) -> Law:
    where = f"law {key}"
    return Law(
        key=key,
        title=_require(entry, "title", where),
        version=str(_require(entry, "version", where)),
        effective_from=_require(entry, "effective_from", where),
        effective_to=entry.get("effective_to"),
    )


def _rule(entry: dict[str, Any], laws: dict[str, Law]) -> Rule:
    rule_id = _require(entry, "id", "rule")
    where = f"rule {rule_id}"
    law_key = _require(entry, "law", where)
    if law_key not in laws:
        raise RulePackError(f"{where}: unknown law {law_key!r}")
    case_types = tuple(_require(entry, "case_types", where))
    for case_type in case_types:
        _choice(case_type, CASE_TYPES, where)
    notify = tuple(_choice(a, AUDIENCES, where) for a in entry.get("notify", ["handler"]))
    deadline = predicate = None
    if "deadline" in entry:
        spec = entry["deadline"]
        deadline = Deadline(
            start=_require(spec, "from", where),
            amount=int(_require(spec, "amount", where)),
            unit=_choice(_require(spec, "unit", where), UNITS, where),
            counting=_choice(spec.get("counting", "procedural"), COUNTINGS, where),
            until=tuple(_require(spec, "until", where)),
            where=_conditions(spec.get("where", []), where),
            per_subject=bool(spec.get("per_subject", False)),
            exclude=tuple(spec.get("exclude", [])),
            extensions=tuple(spec.get("extensions", [])),
        )
    elif "predicate" in entry:
        spec = entry["predicate"]
        predicate = Predicate(
            type=_choice(_require(spec, "type", where), PREDICATES, where),
            fact=spec.get("fact", ""),
            where=_conditions(spec.get("where", []), where),
            missing=tuple(spec.get("missing", [])),
            per_subject=bool(spec.get("per_subject", False)),
            grace_hours=int(spec.get("grace_hours", 0)),
            idle_days=int(spec.get("idle_days", 0)),
        )
        if predicate.type != "idle" and not predicate.fact:
            raise RulePackError(f"{where}: a {predicate.type} predicate needs a fact")
        if predicate.type == "fact_without" and not predicate.missing:
            raise RulePackError(f"{where}: fact_without needs missing facts")
    else:
        raise RulePackError(f"{where}: needs a deadline or a predicate")
    return Rule(
        id=rule_id,
        name=_texts(entry, "name", where),
        kind=_choice(_require(entry, "kind", where), KINDS, where),
        severity=_choice(entry.get("severity", "medium"), SEVERITIES, where),
        case_types=case_types,
        states=tuple(entry.get("states", [])),
        law=laws[law_key],
        article=str(_require(entry, "article", where)),
        notify=notify,
        ahead_hours=int(entry.get("ahead_hours", 0)),
        template=_texts(entry, "template", where),
        unverified=bool(entry.get("unverified", False)),
        source_note=entry.get("source_note", ""),
        after_close=bool(entry.get("after_close", False)),
        deadline=deadline,
        predicate=predicate,
    )


def load_pack(directory: Path = RULES_DIR) -> RulePack:
    """Read and validate every ``*.toml`` of a rule pack directory."""
    documents = [tomllib.loads(p.read_text("utf-8")) for p in sorted(directory.glob("*.toml"))]
    header = next((d["pack"] for d in documents if "pack" in d), None)
    if header is None:
        raise RulePackError("no [pack] header")
    laws: dict[str, Law] = {}
    action_facts: dict[str, str] = {}
    for document in documents:
        laws.update({key: _law(key, entry) for key, entry in document.get("laws", {}).items()})
        action_facts.update(document.get("facts", {}).get("actions", {}))
    pack = RulePack(
        id=header["id"],
        version=str(header["version"]),
        escalate_to_legal_hours=int(header.get("escalate_to_legal_hours", 4)),
        escalate_to_centre_hours=int(header.get("escalate_to_centre_hours", 24)),
        laws=laws,
        action_facts=action_facts,
    )
    for document in documents:
        for entry in document.get("rules", []):
            rule = _rule(entry, laws)
            if rule.id in pack.rules:
                raise RulePackError(f"rule {rule.id}: defined twice")
            pack.rules[rule.id] = rule
    return pack


@cache
def default_pack() -> RulePack:
    return load_pack()
