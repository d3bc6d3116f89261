"""Document kinds and templates, loaded from the TOML files in ``shared/documents``.

Both sides use this module: the backend makes drafts from the templates and
checks edits against them; the mobile client fills documents offline with the
same prefill, computes the same content hash and builds the same signed fields
for a signature.

A document's content is one JSON object::

    {"kind": ..., "title": ..., "header": {key: text, ...},
     "qa": [{"id": ..., "question": ..., "answer": ...}, ...]     # body "qa"
     "sections": [{"key": ..., "heading": ..., "text": ...}, ...]  # body "sections"
     "items": [{"name": ..., "quantity": ..., "features": ..., "note": ...}, ...]}  # "items"

Its hash (``content_sha256``) is the SHA-256 of its canonical JSON: keys
sorted, no insignificant whitespace, UTF-8 text (``canonical_json``).
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from functools import cache
from importlib import resources
from typing import Any

from shared.enums import CaseType, PersonRole, SignerRole
from shared.workflow import Label

BODY_TYPES = frozenset({"qa", "sections", "items"})
SOURCES = frozenset(
    {
        "case.number",
        "case.title",
        "unit.name",
        "officer.name",
        "person.name",
        "person.role",
        "person.id_number",
        "person.phone",
        "person.address",
        "incident.place",
        "incident.occurred_at",
        "today",
    }
)
"""Where header fields and template texts take their prefilled values from."""

RIGHTS_NOTICE_ID = "rights_notice"
OFFICER_ROLES = frozenset({SignerRole.OFFICER, SignerRole.SECOND_OFFICER})
SIGNATURE_PURPOSE = "signature"
CHINA_STANDARD_TIME = timezone(timedelta(hours=8), "CST")
ADULT_AGE = 18

_PLACEHOLDER = re.compile(r"\{([a-z_]+(?:\.[a-z_]+)?)\}")
_RESIDENT_ID = re.compile(r"^\d{17}[\dXx]$")


class TemplateError(ValueError):
    """A kinds or template file is inconsistent."""


@dataclass(frozen=True)
class Kind:
    """A document kind: its body type, the case types it serves and its signers."""

    id: str
    label: Label
    body: str
    case_types: frozenset[CaseType]
    person: bool
    signatures: tuple[SignerRole, ...]
    optional: tuple[SignerRole, ...]
    guardian_if_minor: bool
    interpreter_if_needed: bool
    witness_if_attested: bool
    generated: bool
    rights_notice: bool
    labels: Mapping[SignerRole, Label]

    def required_signatures(
        self, *, minor: bool, interpreter: bool, witness: bool
    ) -> tuple[SignerRole, ...]:
        """The roles that must sign a document of this kind about this person;
        ``witness``: a 见证人 attested what the document records."""
        roles = list(self.signatures)
        if minor and self.guardian_if_minor:
            roles.append(SignerRole.GUARDIAN)
        if interpreter and self.interpreter_if_needed:
            roles.append(SignerRole.INTERPRETER)
        if witness and self.witness_if_attested:
            roles.append(SignerRole.WITNESS)
        return tuple(dict.fromkeys(roles))

    def accepts(self, role: SignerRole) -> bool:
        return role in self.signatures or role in self.optional


@dataclass(frozen=True)
class HeaderField:
    key: str
    label: Label
    source: str | None = None
    required: bool = False


@dataclass(frozen=True)
class Question:
    id: str
    topic: str
    label: Label
    prefill: bool = False


@dataclass(frozen=True)
class Section:
    key: str
    label: Label
    text: str = ""
    locked: bool = False
    required: bool = False


@dataclass(frozen=True)
class Template:
    """How documents of one kind start in cases of one type."""

    case_type: CaseType
    kind: Kind
    title: str
    persons: frozenset[PersonRole]
    person_role_labels: Mapping[PersonRole, Label]
    header: tuple[HeaderField, ...]
    rights_notice: Mapping[str, str]
    questions: tuple[Question, ...]
    sections: tuple[Section, ...]

    @property
    def id(self) -> str:
        return f"{self.case_type}.{self.kind.id}"

    def header_field(self, key: str) -> HeaderField | None:
        return next((f for f in self.header if f.key == key), None)

    def section(self, key: str) -> Section | None:
        return next((s for s in self.sections if s.key == key), None)

    def rights_notice_for(self, person_role: str | None, facts: Mapping[str, str]) -> str:
        text = self.rights_notice.get(person_role or "") or self.rights_notice["default"]
        return fill(text, facts)

    def draft(self, facts: Mapping[str, str], person_role: str | None) -> dict[str, Any]:
        """The content of a new draft, prefilled from ``facts`` (values by source)."""
        content: dict[str, Any] = {
            "kind": self.kind.id,
            "title": self.title,
            "header": {f.key: facts.get(f.source, "") if f.source else "" for f in self.header},
        }
        if self.kind.body == "qa":
            qa = [
                {"id": q.id, "question": fill(q.label.zh, facts), "answer": ""}
                for q in self.questions
                if q.prefill
            ]
            if self.kind.rights_notice:
                notice = self.rights_notice_for(person_role, facts)
                qa.insert(0, {"id": RIGHTS_NOTICE_ID, "question": notice, "answer": ""})
            content["qa"] = qa
        elif self.kind.body == "sections":
            content["sections"] = [
                {"key": s.key, "heading": s.label.zh, "text": fill(s.text, facts)}
                for s in self.sections
            ]
        else:
            content["items"] = []
        return content

    def incomplete(self, content: Mapping[str, Any]) -> dict[str, Any]:
        """What must still be written before ``content`` can be finalised, by field."""
        errors: dict[str, Any] = {}
        header = content.get("header", {})
        missing = {
            f.key: ["Required before finalising."]
            for f in self.header
            if f.required and not str(header.get(f.key, "")).strip()
        }
        if missing:
            errors["header"] = missing
        if self.kind.body == "qa":
            qa = content.get("qa", [])
            unanswered = {
                str(i): ["An answer is required."]
                for i, entry in enumerate(qa)
                if not entry["answer"].strip()
            }
            if unanswered:
                errors["qa"] = unanswered
            elif len(qa) <= int(self.kind.rights_notice):
                errors["qa"] = {"_schema": ["The record has no questions."]}
        elif self.kind.body == "sections":
            empty = {
                s["key"]: ["Required before finalising."]
                for s in content.get("sections", [])
                if (spec := self.section(s["key"])) and spec.required and not s["text"].strip()
            }
            if empty:
                errors["sections"] = empty
        elif not content.get("items"):
            errors["items"] = {"_schema": ["The list has no items."]}
        return errors


@dataclass(frozen=True)
class Catalogue:
    """All kinds and templates, with the labels of signer roles and question topics."""

    kinds: Mapping[str, Kind]
    signer_roles: Mapping[SignerRole, Label]
    topics: Mapping[str, Label]
    templates: Mapping[tuple[CaseType, str], Template]

    def template(self, case_type: CaseType | str, kind: str) -> Template | None:
        return self.templates.get((CaseType(case_type), kind))

    def signer_label(self, kind: Kind, role: SignerRole) -> Label:
        return kind.labels.get(role) or self.signer_roles[role]


# Values, hashes and signed fields


def fill(text: str, facts: Mapping[str, str]) -> str:
    """``text`` with each ``{source}`` replaced by its value (empty when unknown)."""
    return _PLACEHOLDER.sub(lambda m: facts.get(m.group(1), ""), text)


def format_time(value: datetime) -> str:
    """A time as written on Chinese police documents, in China Standard Time."""
    return value.astimezone(CHINA_STANDARD_TIME).strftime("%Y年%m月%d日%H时%M分")


def format_date(value: date) -> str:
    return value.strftime("%Y年%m月%d日")


def is_minor(id_number: str | None, on: date) -> bool | None:
    """Whether the holder of an 18-digit resident ID number is under 18 on ``on``;
    ``None`` when the number does not carry a valid birth date."""
    if not id_number or not _RESIDENT_ID.match(id_number):
        return None
    try:
        born = date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))
    except ValueError:
        return None
    if born > on:
        return None
    age = on.year - born.year - ((on.month, on.day) < (born.month, born.day))
    return age < ADULT_AGE


def canonical_json(value: Any) -> bytes:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def content_sha256(content: Mapping[str, Any]) -> str:
    """The hash a document's signatures cover."""
    return hashlib.sha256(canonical_json(content)).hexdigest()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def instant_text(value: datetime) -> str:
    """An instant in the one text form signatures use: UTC, microseconds, ``+00:00``."""
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def signature_fields(
    *,
    document_id: str,
    content_sha256: str,
    signer_role: str,
    signer_name: str,
    signer_user_id: str | None,
    signer_id_number: str | None,
    signed_at: datetime,
    image_png: bytes,
    fingerprint: bytes | None,
    strokes: list[list[list[int]]],
    device_id: str,
) -> dict[str, Any]:
    """The fields a device signs (purpose ``signature``) when it submits a signature.

    The device signs ``shared.signing.canonical_form("signature", fields)``; ids
    are lower-case hyphenated UUID text, hashes lower-case hex SHA-256 (the
    fingerprint's is ``None`` without one), ``strokes_sha256`` hashes the
    canonical JSON of the strokes.
    """
    return {
        "document_id": str(document_id),
        "content_sha256": content_sha256,
        "signer_role": str(signer_role),
        "signer_name": signer_name,
        "signer_user_id": str(signer_user_id) if signer_user_id else None,
        "signer_id_number": signer_id_number,
        "signed_at": instant_text(signed_at),
        "image_sha256": sha256_hex(image_png),
        "fingerprint_sha256": sha256_hex(fingerprint) if fingerprint is not None else None,
        "strokes_sha256": sha256_hex(canonical_json(strokes)),
        "device_id": device_id,
    }


# Loading


def _label(raw: Any, where: str) -> Label:
    try:
        return Label(zh=raw["zh"], en=raw["en"])
    except (KeyError, TypeError) as exc:
        raise TemplateError(f"{where}: needs zh and en names") from exc


def _roles(raw: list[str], where: str) -> tuple[SignerRole, ...]:
    try:
        return tuple(SignerRole(r) for r in raw)
    except ValueError as exc:
        raise TemplateError(f"{where}: {exc}") from exc


def _check_text(text: str, where: str) -> str:
    unknown = set(_PLACEHOLDER.findall(text)) - SOURCES
    if unknown:
        raise TemplateError(f"{where}: unknown placeholders {sorted(unknown)}")
    return text


def _parse_kind(kind_id: str, raw: dict[str, Any]) -> Kind:
    where = f"kind {kind_id}"
    if raw.get("body") not in BODY_TYPES:
        raise TemplateError(f"{where}: body must be one of {sorted(BODY_TYPES)}")
    signatures = _roles(raw.get("signatures", []), where)
    optional = _roles(raw.get("optional", []), where)
    if not signatures or set(signatures) & set(optional):
        raise TemplateError(f"{where}: needs signatures, none of them also optional")
    if raw.get("rights_notice") and raw["body"] != "qa":
        raise TemplateError(f"{where}: only transcripts (body qa) carry a rights notice")
    labels = raw.get("labels", {})
    return Kind(
        id=kind_id,
        label=_label(raw.get("name"), where),
        body=raw["body"],
        case_types=frozenset(CaseType(t) for t in raw.get("case_types", ())),
        person=bool(raw.get("person", False)),
        signatures=signatures,
        optional=optional,
        guardian_if_minor=bool(raw.get("guardian_if_minor", False)),
        interpreter_if_needed=bool(raw.get("interpreter_if_needed", False)),
        witness_if_attested=bool(raw.get("witness_if_attested", False)),
        generated=bool(raw.get("generated", False)),
        rights_notice=bool(raw.get("rights_notice", False)),
        labels={SignerRole(r): _label(v, f"{where} label {r}") for r, v in labels.items()},
    )


def _unique(keys: list[str], where: str) -> None:
    if len(keys) != len(set(keys)):
        raise TemplateError(f"{where}: duplicate keys")


def _parse_template(
    case_type: CaseType,
    kind: Kind,
    raw: dict[str, Any],
    role_labels: Mapping[PersonRole, Label],
    topics: Mapping[str, Label],
) -> Template:
    where = f"template {case_type}.{kind.id}"
    header = tuple(
        HeaderField(
            key=f["key"],
            label=_label(f, f"{where} header {f.get('key')}"),
            source=f.get("source"),
            required=bool(f.get("required", False)),
        )
        for f in raw.get("header", ())
    )
    _unique([f.key for f in header], f"{where} header")
    for f in header:
        if f.source is not None and f.source not in SOURCES:
            raise TemplateError(f"{where} header {f.key}: unknown source {f.source!r}")
    questions = tuple(
        Question(
            id=q["id"],
            topic=q["topic"],
            label=_label(q, f"{where} question {q.get('id')}"),
            prefill=bool(q.get("prefill", False)),
        )
        for q in raw.get("questions", ())
    )
    _unique([q.id for q in questions] + [RIGHTS_NOTICE_ID], f"{where} questions")
    sections = tuple(
        Section(
            key=s["key"],
            label=_label(s, f"{where} section {s.get('key')}"),
            text=_check_text(s.get("text", ""), f"{where} section {s['key']}"),
            locked=bool(s.get("locked", False)),
            required=bool(s.get("required", False)),
        )
        for s in raw.get("sections", ())
    )
    _unique([s.key for s in sections], f"{where} sections")
    rights = {
        role: _check_text(text, f"{where} rights notice")
        for role, text in raw.get("rights_notice", {}).items()
    }
    template = Template(
        case_type=case_type,
        kind=kind,
        title=raw.get("title") or kind.label.zh,
        persons=frozenset(PersonRole(p) for p in raw.get("persons", ())),
        person_role_labels=role_labels,
        header=header,
        rights_notice=rights,
        questions=questions,
        sections=sections,
    )
    _check_template(template, topics, where)
    return template


def _check_template(template: Template, topics: Mapping[str, Label], where: str) -> None:
    kind = template.kind
    for question in template.questions:
        _check_text(question.label.zh, f"{where} question {question.id}")
        if question.topic not in topics:
            raise TemplateError(f"{where} question {question.id}: unknown topic")
    if kind.rights_notice and "default" not in template.rights_notice:
        raise TemplateError(f"{where}: needs a default rights notice")
    if (kind.body == "qa") != bool(template.questions):
        raise TemplateError(f"{where}: a question bank belongs to transcripts, and only there")
    if (kind.body == "sections") != bool(template.sections):
        raise TemplateError(f"{where}: sections belong to body type sections, and only there")
    if kind.person and not template.persons:
        raise TemplateError(f"{where}: names no person roles")


def _toml(name: str) -> dict[str, Any]:
    return tomllib.loads(resources.files("shared.documents").joinpath(name).read_text("utf-8"))


@cache
def load_catalogue() -> Catalogue:
    """Every kind and template, parsed and checked once per process."""
    raw = _toml("kinds.toml")
    signer_roles = {
        SignerRole(role): _label(label, f"signer role {role}")
        for role, label in raw["signer_roles"].items()
    }
    if set(signer_roles) != set(SignerRole):
        raise TemplateError("kinds.toml: every signer role needs a label")
    topics = {key: _label(label, f"topic {key}") for key, label in raw["topics"].items()}
    kinds = {kind_id: _parse_kind(kind_id, spec) for kind_id, spec in raw["kinds"].items()}
    templates: dict[tuple[CaseType, str], Template] = {}
    for entry in sorted(resources.files("shared.documents").iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".toml") or entry.name == "kinds.toml":
            continue
        data = _toml(entry.name)
        case_type = CaseType(data["case_type"])
        role_labels = {
            PersonRole(role): _label(label, f"{entry.name} person role {role}")
            for role, label in data.get("person_roles", {}).items()
        }
        for kind_id, spec in data.get("templates", {}).items():
            if kind_id not in kinds:
                raise TemplateError(f"{entry.name}: template for unknown kind {kind_id!r}")
            kind = kinds[kind_id]
            if case_type not in kind.case_types:
                raise TemplateError(f"{entry.name}: kind {kind_id} does not apply to {case_type}")
            templates[(case_type, kind_id)] = _parse_template(
                case_type, kind, spec, role_labels, topics
            )
    for kind in kinds.values():
        for case_type in kind.case_types:
            if (case_type, kind.id) not in templates:
                raise TemplateError(f"kind {kind.id}: no template for {case_type} cases")
    return Catalogue(kinds=kinds, signer_roles=signer_roles, topics=topics, templates=templates)
