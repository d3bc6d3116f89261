"""Workflow-driven forms: the inputs of a workflow action as typed field specs.

The workflow definitions in ``shared/workflows`` are the same the server
enforces, so a step prepared offline is checked here with the server's own
rules (``shared.workflow.Action.payload_errors``) before it is queued.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.enums import CaseType
from shared.workflow import Action, Input, Label, Workflow, load_workflows

TRUE_WORDS = frozenset({"true", "yes", "y", "1", "是", "对"})
FALSE_WORDS = frozenset({"false", "no", "n", "0", "否", "不"})


class FormErrors(ValueError):
    """The values do not fill the form; ``errors`` maps field names to messages (or, for
    a group of fields, to a mapping of its field names to messages)."""

    def __init__(self, errors: dict[str, Any]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{name}: {' '.join(m)}" for name, m in errors.items()))


@dataclass(frozen=True)
class FieldSpec:
    """One input of a step: ``type`` is text, boolean, integer, datetime, choice or person.

    Readable as a mapping too (``spec["name"]``, ``spec.get("label")``), like
    the action specs the server sends.
    """

    name: str
    type: str
    label: dict[str, str]
    required: bool
    choices: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, spec: Input) -> FieldSpec:
        return cls(spec.name, spec.type, spec.label.as_dict(), spec.required, list(spec.choices))

    def label_in(self, language: str) -> str:
        return self.label["en" if language.startswith("en") else "zh"]

    def __getitem__(self, key: str) -> Any:
        if key not in self.__dataclass_fields__:
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default) if key in self.__dataclass_fields__ else default

    def parse(self, raw: Any) -> Any:
        """The typed value of what was entered (text from a widget, or a typed value);
        ``None`` for nothing entered. A value that cannot be read stays as entered,
        for ``error`` to explain."""
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            return None
        if not isinstance(raw, str):
            return raw
        text = raw.strip()
        if self.type == "boolean":
            word = text.lower()
            return True if word in TRUE_WORDS else False if word in FALSE_WORDS else raw
        if self.type == "integer":
            try:
                return int(text)
            except ValueError:
                return raw
        if self.type == "datetime":
            try:
                return datetime.fromisoformat(text).isoformat()
            except ValueError:
                return raw
        return raw if self.type in ("text", "person") else text

    def error(self, value: Any) -> str | None:
        """Why ``value`` (typed) does not fill this field, or ``None``."""
        if value is None:
            return "Missing required input." if self.required else None
        return self.as_input().error_for(value)

    def as_input(self) -> Input:
        label = Label(zh=self.label["zh"], en=self.label["en"])
        return Input(self.name, self.type, label, self.required, tuple(self.choices))


def workflow(case_type: CaseType | str) -> Workflow:
    return load_workflows()[CaseType(case_type)]


def action_of(case_type: CaseType | str, action: str) -> Action:
    try:
        return workflow(case_type).actions[action]
    except KeyError as error:
        raise FormErrors({"action": [f"Unknown action {action!r} for {case_type}."]}) from error


def workflow_form(case_type: CaseType | str, action: str) -> list[FieldSpec]:
    """The inputs of ``action`` in the workflow of ``case_type``, in their order."""
    return [FieldSpec.of(spec) for spec in action_of(case_type, action).inputs]


def parse_payload(
    case_type: CaseType | str, action: str, values: Mapping[str, Any]
) -> dict[str, Any]:
    """The step's payload from entered ``values``: typed, with empty optional fields left
    out; raises ``FormErrors`` with the server's rules when it would be refused."""
    fields = workflow_form(case_type, action)
    known = {spec.name for spec in fields}
    errors: dict[str, list[str]] = {
        name: ["Unknown input."] for name in values if name not in known
    }
    payload: dict[str, Any] = {}
    for spec in fields:
        value = spec.parse(values.get(spec.name))
        problem = spec.error(value)
        if problem:
            errors[spec.name] = [problem]
        elif value is not None:
            payload[spec.name] = value
    if errors:
        raise FormErrors(errors)
    server_errors = action_of(case_type, action).payload_errors(payload)
    if server_errors:
        raise FormErrors(server_errors)
    return payload


def available_actions(
    case_type: CaseType | str, state: str, roles: Iterable[str]
) -> list[dict[str, Any]]:
    """The actions of the workflow a user with ``roles`` may request in ``state``,
    for a case whose list of actions has not been fetched yet (offline)."""
    held = set(roles)
    return [
        {
            "name": action.name,
            "label": action.label.as_dict(),
            "to": action.target,
            "needs_approval": action.needs_approval,
            "inputs": [FieldSpec.of(spec) for spec in action.inputs],
        }
        for action in workflow(case_type).actions_from(state)
        if {str(role) for role in action.roles} & held
    ]


def state_label(case_type: CaseType | str, state: str) -> dict[str, str] | None:
    """The state's name in both languages, or ``None`` for an unknown one."""
    try:
        return workflow(case_type).states[state].label.as_dict()
    except (KeyError, ValueError):
        return None
