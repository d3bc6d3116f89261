"""Remote session kinds as data: ``sessions.toml`` loaded and checked once."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

SESSIONS_FILE = Path(__file__).parent / "sessions.toml"
ROLES = (
    "presiding",
    "administrator",
    "identifier",
    "suspect",
    "lawyer",
    "interpreter",
    "guardian",
    "witness",
)
RECORD_MODES = ("generated", "linked", "none")
SETTING_TYPES = ("bool", "choice")


class SessionsConfigError(ValueError):
    """``sessions.toml`` is malformed."""


@dataclass(frozen=True)
class Notice:
    key: str
    roles: tuple[str, ...]
    required: bool
    fact: str
    name: dict[str, str]


@dataclass(frozen=True)
class Setting:
    type: str
    default: Any
    choices: tuple[str, ...] = ()

    def accepts(self, value: Any) -> bool:
        if self.type == "bool":
            return isinstance(value, bool)
        return value in self.choices


@dataclass(frozen=True)
class KindSpec:
    key: str
    name: dict[str, str]
    case_types: tuple[str, ...]
    min_presiding: int
    allowed_roles: tuple[str, ...]
    required_roles: tuple[str, ...]
    person_roles: tuple[str, ...]
    joinable_roles: tuple[str, ...]
    record_document_kind: str
    record_mode: str
    fact: str
    notices: tuple[Notice, ...] = ()
    settings: dict[str, Setting] = field(default_factory=dict)

    def notice(self, key: str) -> Notice | None:
        return next((n for n in self.notices if n.key == key), None)


def _roles(spec: dict[str, Any], name: str, kind: str) -> tuple[str, ...]:
    roles = tuple(spec.get(name, ()))
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise SessionsConfigError(f"{kind}.{name}: unknown roles {sorted(unknown)}")
    return roles


def _kind(key: str, spec: dict[str, Any]) -> KindSpec:
    allowed = _roles(spec, "allowed_roles", key)
    if "presiding" not in allowed:
        raise SessionsConfigError(f"{key}: presiding investigators must be allowed")
    for name in ("required_roles", "person_roles", "joinable_roles"):
        if not set(_roles(spec, name, key)) <= set(allowed):
            raise SessionsConfigError(f"{key}.{name}: roles outside allowed_roles")
    if "presiding" in spec.get("joinable_roles", ()):
        raise SessionsConfigError(f"{key}: presiding investigators sign in as users")
    if int(spec["min_presiding"]) < 1:
        raise SessionsConfigError(f"{key}: min_presiding must be at least 1")
    record = spec["record"]
    if record["mode"] not in RECORD_MODES or (record["mode"] != "none") != bool(
        record["document_kind"]
    ):
        raise SessionsConfigError(f"{key}.record: a mode of {RECORD_MODES} and its document kind")
    notices = tuple(
        Notice(
            key=n["key"],
            roles=_roles(n, "roles", f"{key}.notices"),
            required=bool(n.get("required", False)),
            fact=n.get("fact", ""),
            name=dict(n["name"]),
        )
        for n in spec.get("notices", ())
    )
    settings = {}
    for name, setting in spec.get("settings", {}).items():
        if setting["type"] not in SETTING_TYPES:
            raise SessionsConfigError(f"{key}.settings.{name}: type must be one of {SETTING_TYPES}")
        parsed = Setting(setting["type"], setting["default"], tuple(setting.get("choices", ())))
        if not parsed.accepts(parsed.default):
            raise SessionsConfigError(f"{key}.settings.{name}: the default is not allowed")
        settings[name] = parsed
    return KindSpec(
        key=key,
        name=dict(spec["name"]),
        case_types=tuple(spec["case_types"]),
        min_presiding=int(spec["min_presiding"]),
        allowed_roles=allowed,
        required_roles=_roles(spec, "required_roles", key),
        person_roles=_roles(spec, "person_roles", key),
        joinable_roles=_roles(spec, "joinable_roles", key),
        record_document_kind=record["document_kind"],
        record_mode=record["mode"],
        fact=spec["fact"],
        notices=notices,
        settings=settings,
    )


@cache
def load_sessions_file(path: Path = SESSIONS_FILE) -> dict[str, Any]:
    """The whole file, parsed (other loaders read their own tables from it)."""
    return tomllib.loads(path.read_text("utf-8"))


@cache
def load_kinds(path: Path = SESSIONS_FILE) -> dict[str, KindSpec]:
    try:
        return {key: _kind(key, spec) for key, spec in load_sessions_file(path)["kinds"].items()}
    except SessionsConfigError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise SessionsConfigError(f"{path.name}: {exc!r}") from exc


def kind_spec(kind: str) -> KindSpec:
    return load_kinds()[kind]
