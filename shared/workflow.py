"""The case workflows, loaded from the TOML files beside this module.

Both sides use them: the backend enforces them, the mobile client shows what
may be done next and validates a step's inputs while offline.

An action may require signed documents (``requires_signed``: document kinds of
``shared/documents/kinds.toml``): none of its approval stages can be approved
before the case holds a signed document of each kind.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any

from shared.enums import CaseType, Role

INPUT_TYPES = frozenset({"text", "boolean", "integer", "datetime", "choice", "person"})
MAX_TEXT_INPUT = 10_000


class WorkflowError(ValueError):
    """A workflow file is inconsistent."""


@dataclass(frozen=True)
class Label:
    zh: str
    en: str

    def as_dict(self) -> dict[str, str]:
        return {"zh": self.zh, "en": self.en}


@dataclass(frozen=True)
class State:
    name: str
    label: Label
    terminal: bool = False
    deadline_hours: int | None = None
    basis: str | None = None


@dataclass(frozen=True)
class ApprovalStage:
    role: Role
    state: str | None = None


@dataclass(frozen=True)
class Input:
    name: str
    type: str
    label: Label
    required: bool = True
    choices: tuple[str, ...] = ()

    def error_for(self, value: Any) -> str | None:
        """Why ``value`` is not acceptable for this input, or ``None``."""
        if self.type in ("text", "person"):
            if not isinstance(value, str) or not value.strip():
                return "Must be a non-empty string."
            if len(value) > MAX_TEXT_INPUT:
                return f"Must be at most {MAX_TEXT_INPUT} characters."
            if "\x00" in value:
                return "Must not contain NUL characters."
        elif self.type == "boolean":
            if not isinstance(value, bool):
                return "Must be true or false."
        elif self.type == "integer":
            if not isinstance(value, int) or isinstance(value, bool):
                return "Must be an integer."
        elif self.type == "datetime":
            try:
                parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
            except ValueError:
                parsed = None
            if parsed is None or parsed.tzinfo is None:
                return "Must be an ISO 8601 date-time with a time zone."
        elif self.type == "choice" and value not in self.choices:
            return "Must be one of: " + ", ".join(self.choices) + "."
        return None


@dataclass(frozen=True)
class Action:
    name: str
    label: Label
    sources: tuple[str, ...]
    target: str
    roles: frozenset[Role]
    approvals: tuple[ApprovalStage, ...] = ()
    inputs: tuple[Input, ...] = ()
    requires_signed: tuple[str, ...] = ()

    @property
    def needs_approval(self) -> bool:
        return bool(self.approvals)

    def payload_errors(self, payload: dict[str, Any]) -> dict[str, list[str]]:
        """Validate a step's payload against the declared inputs."""
        errors: dict[str, list[str]] = {}
        known = {i.name: i for i in self.inputs}
        for key in payload:
            if key not in known:
                errors[key] = ["Unknown input."]
        for spec in self.inputs:
            if spec.name not in payload or payload[spec.name] is None:
                if spec.required:
                    errors[spec.name] = ["Missing required input."]
                continue
            problem = spec.error_for(payload[spec.name])
            if problem:
                errors[spec.name] = [problem]
        return errors


@dataclass(frozen=True)
class Workflow:
    case_type: CaseType
    label: Label
    initial: str
    states: dict[str, State]
    actions: dict[str, Action] = field(default_factory=dict)

    def is_terminal(self, state: str) -> bool:
        return self.states[state].terminal

    def actions_from(self, state: str) -> list[Action]:
        return [a for a in self.actions.values() if state in a.sources]

    def approval_states(self) -> frozenset[str]:
        return frozenset(
            stage.state for a in self.actions.values() for stage in a.approvals if stage.state
        )


def _label(raw: dict[str, Any], where: str) -> Label:
    try:
        return Label(zh=raw["zh"], en=raw["en"])
    except (KeyError, TypeError) as exc:
        raise WorkflowError(f"{where}: needs zh and en names") from exc


def _document_kinds(raw: Any, action: str) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(kind, str) for kind in raw):
        raise WorkflowError(f"action {action}: requires_signed must be a list of document kinds")
    return tuple(raw)


def _parse(raw: dict[str, Any]) -> Workflow:
    states = {
        name: State(
            name=name,
            label=_label(spec, f"state {name}"),
            terminal=bool(spec.get("terminal", False)),
            deadline_hours=spec.get("deadline_hours"),
            basis=spec.get("basis"),
        )
        for name, spec in raw["states"].items()
    }
    actions = {}
    for name, spec in raw["actions"].items():
        inputs = tuple(
            Input(
                name=i["name"],
                type=i["type"],
                label=_label(i, f"input {name}.{i['name']}"),
                required=bool(i.get("required", True)),
                choices=tuple(i.get("choices", ())),
            )
            for i in spec.get("inputs", ())
        )
        actions[name] = Action(
            name=name,
            label=_label(spec["name"], f"action {name}"),
            sources=tuple(spec["from"]),
            target=spec["to"],
            roles=frozenset(Role(r) for r in spec["roles"]),
            approvals=tuple(
                ApprovalStage(role=Role(s["role"]), state=s.get("state"))
                for s in spec.get("approvals", ())
            ),
            inputs=inputs,
            requires_signed=_document_kinds(spec.get("requires_signed", []), name),
        )
    workflow = Workflow(
        case_type=CaseType(raw["case_type"]),
        label=_label(raw["name"], "workflow"),
        initial=raw["initial"],
        states=states,
        actions=actions,
    )
    _check(workflow)
    return workflow


def _check(workflow: Workflow) -> None:
    states = workflow.states
    if workflow.initial not in states:
        raise WorkflowError(f"initial state {workflow.initial!r} is not declared")
    for action in workflow.actions.values():
        for state in (*action.sources, action.target):
            if state not in states:
                raise WorkflowError(f"action {action.name}: unknown state {state!r}")
        if any(states[s].terminal for s in action.sources):
            raise WorkflowError(f"action {action.name}: leaves a terminal state")
        for stage in action.approvals:
            if stage.state and stage.state not in states:
                raise WorkflowError(f"action {action.name}: unknown stage state {stage.state!r}")
        for spec in action.inputs:
            if spec.type not in INPUT_TYPES:
                raise WorkflowError(f"action {action.name}: unknown input type {spec.type!r}")
            if spec.type == "choice" and not spec.choices:
                raise WorkflowError(f"action {action.name}: choice input without choices")
        _check_required_documents(workflow.case_type, action)
    seen, todo = {workflow.initial}, [workflow.initial]
    while todo:
        for action in workflow.actions_from(todo.pop()):
            if action.target not in seen:
                seen.add(action.target)
                todo.append(action.target)
    if not any(states[s].terminal for s in seen):
        raise WorkflowError(f"no terminal state can be reached from {workflow.initial!r}")


def _check_required_documents(case_type: CaseType, action: Action) -> None:
    if not action.requires_signed:
        return
    # Imported here: shared.templates builds on this module (its Label).
    from shared.templates import load_catalogue

    where = f"action {action.name}: requires_signed"
    if not action.needs_approval:
        raise WorkflowError(f"{where} needs approvals (checked when a stage is approved)")
    if len(set(action.requires_signed)) != len(action.requires_signed):
        raise WorkflowError(f"{where} names a kind twice")
    kinds = load_catalogue().kinds
    for name in action.requires_signed:
        if name not in kinds:
            raise WorkflowError(f"{where}: unknown document kind {name!r}")
        if case_type not in kinds[name].case_types:
            raise WorkflowError(f"{where}: kind {name!r} is not a document of {case_type} cases")


@cache
def load_workflows() -> dict[CaseType, Workflow]:
    """All workflows by case type, parsed and checked once per process."""
    workflows = {}
    for entry in resources.files("shared.workflows").iterdir():
        if entry.name.endswith(".toml"):
            workflow = _parse(tomllib.loads(entry.read_text(encoding="utf-8")))
            workflows[workflow.case_type] = workflow
    return workflows


def workflow_for(case_type: CaseType | str) -> Workflow:
    return load_workflows()[CaseType(case_type)]
