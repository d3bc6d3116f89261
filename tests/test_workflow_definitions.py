"""The workflow files, their loader and checks (``shared/workflow.py``), and
``GET /api/v1/workflows``.

The expected data is read from the TOML files with ``tomllib`` directly, so a
loader that drops or changes something is caught.
"""

from __future__ import annotations

import copy
import tomllib
from collections import deque
from pathlib import Path
from typing import Any

import pytest

import shared.workflows
from shared.enums import CaseType, Role
from shared.workflow import (
    INPUT_TYPES,
    MAX_TEXT_INPUT,
    Action,
    Input,
    Label,
    Workflow,
    WorkflowError,
    _parse,
    load_workflows,
    workflow_for,
)

WORKFLOW_DIR = Path(shared.workflows.__file__).parent
TOML_FILES = {"administrative": "administrative.toml", "criminal": "criminal.toml"}


def raw_workflow(case_type: str) -> dict[str, Any]:
    return tomllib.loads((WORKFLOW_DIR / TOML_FILES[case_type]).read_text(encoding="utf-8"))


@pytest.fixture(params=sorted(TOML_FILES))
def case_type(request: pytest.FixtureRequest) -> str:
    return request.param


def graph(workflow: Workflow) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {name: set() for name in workflow.states}
    for action in workflow.actions.values():
        for source in action.sources:
            edges[source].add(action.target)
    return edges


def reachable(workflow: Workflow, start: str) -> set[str]:
    edges, seen, todo = graph(workflow), {start}, deque([start])
    while todo:
        for nxt in edges[todo.popleft()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


# The loader


def test_both_workflows_are_loaded_and_cached() -> None:
    workflows = load_workflows()
    assert set(workflows) == {CaseType.ADMINISTRATIVE, CaseType.CRIMINAL}
    assert load_workflows() is workflows
    for case_type, workflow in workflows.items():
        assert workflow.case_type == case_type
        assert workflow_for(case_type) is workflow
        assert workflow_for(str(case_type)) is workflow
    with pytest.raises(ValueError):
        workflow_for("civil")


def test_loaded_workflow_matches_the_toml_file(case_type: str) -> None:
    raw = raw_workflow(case_type)
    workflow = workflow_for(case_type)
    assert workflow.case_type == CaseType(raw["case_type"]) == CaseType(case_type)
    assert workflow.initial == raw["initial"]
    assert workflow.label == Label(**raw["name"])

    assert list(workflow.states) == list(raw["states"])
    for name, spec in raw["states"].items():
        state = workflow.states[name]
        assert state.name == name
        assert state.label == Label(zh=spec["zh"], en=spec["en"])
        assert state.terminal is spec.get("terminal", False)
        assert state.deadline_hours == spec.get("deadline_hours")
        assert state.basis == spec.get("basis")

    assert list(workflow.actions) == list(raw["actions"])
    for name, spec in raw["actions"].items():
        action = workflow.actions[name]
        assert action.name == name
        assert action.label == Label(**spec["name"])
        assert action.sources == tuple(spec["from"])
        assert action.target == spec["to"]
        assert action.roles == frozenset(Role(r) for r in spec["roles"])
        assert [(s.role, s.state) for s in action.approvals] == [
            (Role(s["role"]), s.get("state")) for s in spec.get("approvals", [])
        ]
        assert action.needs_approval is bool(spec.get("approvals"))
        assert [(i.name, i.type, i.required, i.choices, i.label) for i in action.inputs] == [
            (
                i["name"],
                i["type"],
                i.get("required", True),
                tuple(i.get("choices", ())),
                Label(zh=i["zh"], en=i["en"]),
            )
            for i in spec.get("inputs", [])
        ]
        assert action.requires_signed == tuple(spec.get("requires_signed", []))


def test_helpers_on_the_loaded_workflows() -> None:
    admin = workflow_for("administrative")
    assert {a.name for a in admin.actions_from("investigating")} == {
        "notify",
        "decide_no_punishment",
        "transfer",
        "convert_to_criminal",
        "revoke",
    }
    assert admin.actions_from("closed") == []
    assert admin.is_terminal("closed") and not admin.is_terminal("decided")
    assert admin.approval_states() == {"legal_review", "leader_approval"}
    criminal = workflow_for("criminal")
    assert criminal.approval_states() == {"legal_review", "leader_approval"}
    assert {a.name for a in criminal.actions_from("investigating")} >= {
        "summon",
        "grant_bail",
        "residential_surveillance",
        "detain",
        "request_arrest",
        "conclude_investigation",
    }


# Properties of the shipped workflow data


def test_every_referenced_state_exists(case_type: str) -> None:
    workflow = workflow_for(case_type)
    assert workflow.initial in workflow.states
    for action in workflow.actions.values():
        assert set(action.sources) <= set(workflow.states), action.name
        assert action.target in workflow.states, action.name
        for stage in action.approvals:
            assert stage.state is None or stage.state in workflow.states, action.name


def test_terminal_states_have_no_outgoing_actions(case_type: str) -> None:
    workflow = workflow_for(case_type)
    terminals = [s for s in workflow.states.values() if s.terminal]
    assert terminals
    for state in terminals:
        assert workflow.actions_from(state.name) == [], state.name
        assert state.deadline_hours is None


def test_a_terminal_state_is_reachable_from_every_reachable_state(case_type: str) -> None:
    workflow = workflow_for(case_type)
    from_initial = reachable(workflow, workflow.initial)
    assert any(workflow.is_terminal(s) for s in from_initial)
    for state in from_initial:
        assert any(workflow.is_terminal(s) for s in reachable(workflow, state)), state
    # Every declared state is used: reached by an action or shown during an approval.
    assert set(workflow.states) == from_initial | workflow.approval_states()


def test_approval_stages_are_well_formed(case_type: str) -> None:
    workflow = workflow_for(case_type)
    for action in workflow.actions.values():
        roles = [stage.role for stage in action.approvals]
        assert len(roles) == len(set(roles)), action.name
        assert set(roles) <= {Role.LEGAL_OFFICER, Role.LEADER}, action.name
        assert Role.OFFICER not in roles
        for stage in action.approvals:
            assert stage.state is None or not workflow.is_terminal(stage.state)
        names = [i.name for i in action.inputs]
        assert len(names) == len(set(names)), action.name
        assert {i.type for i in action.inputs} <= INPUT_TYPES


@pytest.mark.parametrize(
    ("case_type", "path"),
    [
        (
            "administrative",
            ["accept", "start_investigation", "notify", "submit_decision", "execute", "close"],
        ),
        (
            "criminal",
            [
                "accept",
                "start_filing_review",
                "file_case",
                "start_investigation",
                "detain",
                "conclude_investigation",
                "transfer_for_prosecution",
                "close",
            ],
        ),
    ],
)
def test_the_main_path_of_the_product_brief(case_type: str, path: list[str]) -> None:
    workflow = workflow_for(case_type)
    state = workflow.initial
    for name in path:
        action = workflow.actions[name]
        assert state in action.sources, (name, state)
        state = action.target
    assert state == "closed" and workflow.is_terminal(state)
    decision = "submit_decision" if case_type == "administrative" else "transfer_for_prosecution"
    assert [(s.role, s.state) for s in workflow.actions[decision].approvals] == [
        (Role.LEGAL_OFFICER, "legal_review"),
        (Role.LEADER, "leader_approval"),
    ]


# The checks run when a workflow is parsed


def mutated(mutate: Any) -> dict[str, Any]:
    raw = copy.deepcopy(raw_workflow("administrative"))
    mutate(raw)
    return raw


def test_the_unmodified_file_parses() -> None:
    assert _parse(copy.deepcopy(raw_workflow("administrative"))) == workflow_for("administrative")
    assert _parse(copy.deepcopy(raw_workflow("criminal"))) == workflow_for("criminal")


def _set(path: list[str], value: Any) -> Any:
    def mutate(raw: dict[str, Any]) -> None:
        node = raw
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return mutate


def _delete_state(name: str) -> Any:
    return lambda raw: raw["states"].pop(name)


def _add_action(name: str, spec: dict[str, Any]) -> Any:
    def mutate(raw: dict[str, Any]) -> None:
        raw["actions"][name] = {"name": {"zh": "测试", "en": "Test"}, "roles": ["officer"], **spec}

    return mutate


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (_set(["initial"], "nowhere"), "initial state 'nowhere'"),
        (_set(["actions", "accept", "from"], ["nowhere"]), "unknown state 'nowhere'"),
        (_set(["actions", "close", "to"], "archived"), "unknown state 'archived'"),
        (_delete_state("executed"), "unknown state 'executed'"),
        (
            _set(["actions", "submit_decision", "approvals"], [{"role": "leader", "state": "x"}]),
            "unknown stage state 'x'",
        ),
        (_add_action("reopen", {"from": ["closed"], "to": "accepted"}), "leaves a terminal"),
        (
            _add_action(
                "note",
                {
                    "from": ["accepted"],
                    "to": "accepted",
                    "inputs": [{"name": "n", "type": "float", "zh": "数", "en": "N"}],
                },
            ),
            "unknown input type 'float'",
        ),
        (
            _add_action(
                "grade",
                {
                    "from": ["accepted"],
                    "to": "accepted",
                    "inputs": [{"name": "g", "type": "choice", "zh": "等级", "en": "Grade"}],
                },
            ),
            "choice input without choices",
        ),
        (_set(["states", "accepted"], {"zh": "已受案"}), "state accepted: needs zh and en"),
        (_set(["actions", "close", "name"], {"en": "Close"}), "action close: needs zh and en"),
        (_set(["name"], "行政案件"), "workflow: needs zh and en"),
        (
            _set(["actions", "notify", "inputs"], [{"name": "facts", "type": "text", "en": "F"}]),
            "input notify.facts: needs zh and en",
        ),
    ],
)
def test_inconsistent_workflows_are_rejected(mutate: Any, message: str) -> None:
    with pytest.raises(WorkflowError, match=message):
        _parse(mutated(mutate))


def test_a_workflow_that_cannot_end_is_rejected() -> None:
    def no_way_out(raw: dict[str, Any]) -> None:
        # Every way to a terminal state starts from `accepted` or later; keep
        # only the actions that stay among the first two states.
        raw["actions"] = {
            "accept": raw["actions"]["accept"],
            "start_investigation": {
                **raw["actions"]["start_investigation"],
                "from": ["accepted"],
                "to": "accepted",
            },
        }

    with pytest.raises(WorkflowError, match="no terminal state"):
        _parse(mutated(no_way_out))


def test_unknown_roles_and_case_types_are_rejected() -> None:
    with pytest.raises(ValueError, match="sheriff"):
        _parse(mutated(_set(["actions", "close", "roles"], ["sheriff"])))
    with pytest.raises(ValueError, match="sheriff"):
        _parse(mutated(_set(["actions", "revoke", "approvals"], [{"role": "sheriff"}])))
    with pytest.raises(ValueError, match="civil"):
        _parse(mutated(_set(["case_type"], "civil")))


# Payload validation, per input type

LONG = "x" * MAX_TEXT_INPUT

VALUES: dict[str, tuple[list[Any], list[Any]]] = {
    # type: (accepted values, rejected values)
    "text": (["事实", " a ", LONG], ["", "   ", 5, True, None, ["a"], {"a": 1}, LONG + "x"]),
    "person": (
        ["6f1c0c2e-7f5b-4a43-9d5e-8f6c2a1b3c4d", "anyone"],
        ["", " ", 7, None, ["6f1c0c2e-7f5b-4a43-9d5e-8f6c2a1b3c4d"], LONG + "x"],
    ),
    "boolean": ([True, False], ["true", 1, 0, None, "yes", []]),
    "integer": ([0, -3, 42, 10**12], [True, False, 1.5, 2.0, "3", None, [1]]),
    "datetime": (
        [
            "2026-03-01T09:30:00+08:00",
            "2026-03-01T01:30:00Z",
            "2026-03-01T01:30:00.123456+00:00",
            "2026-03-01 09:30+08:00",
        ],
        [
            "2026-03-01T09:30:00",
            "2026-03-01",
            "yesterday",
            "",
            "2026-13-01T09:30:00+08:00",
            1_772_000_000,
            None,
            True,
        ],
    ),
    "choice": (["fine", "warning"], ["Fine", "", "banishment", None, 1, ["fine"]]),
}


def spec_of(kind: str, *, required: bool = True) -> Input:
    return Input(
        name="value",
        type=kind,
        label=Label("值", "Value"),
        required=required,
        choices=("warning", "fine") if kind == "choice" else (),
    )


def test_every_input_type_is_covered() -> None:
    assert set(VALUES) == INPUT_TYPES


@pytest.mark.parametrize(
    ("kind", "value"),
    [(kind, value) for kind, (good, _) in VALUES.items() for value in good],
)
def test_valid_input_values(kind: str, value: Any) -> None:
    spec = spec_of(kind)
    assert spec.error_for(value) is None
    action = Action("a", Label("a", "a"), ("s",), "s", frozenset({Role.OFFICER}), inputs=(spec,))
    assert action.payload_errors({"value": value}) == {}


@pytest.mark.parametrize(
    ("kind", "value"),
    [(kind, value) for kind, (_, bad) in VALUES.items() for value in bad],
)
def test_invalid_input_values(kind: str, value: Any) -> None:
    spec = spec_of(kind)
    action = Action("a", Label("a", "a"), ("s",), "s", frozenset({Role.OFFICER}), inputs=(spec,))
    if value is None:  # null counts as not sent
        assert action.payload_errors({"value": None}) == {"value": ["Missing required input."]}
        return
    problem = spec.error_for(value)
    assert problem
    assert action.payload_errors({"value": value}) == {"value": [problem]}


def test_error_messages_name_what_is_expected() -> None:
    assert spec_of("datetime").error_for("2026-03-01T09:30:00") == (
        "Must be an ISO 8601 date-time with a time zone."
    )
    assert spec_of("choice").error_for("x") == "Must be one of: warning, fine."
    assert spec_of("text").error_for(LONG + "x") == (
        f"Must be at most {MAX_TEXT_INPUT} characters."
    )
    assert spec_of("boolean").error_for(1) == "Must be true or false."
    assert spec_of("integer").error_for(True) == "Must be an integer."
    assert spec_of("person").error_for("") == "Must be a non-empty string."


def test_payloads_of_real_actions() -> None:
    admin, criminal = workflow_for("administrative"), workflow_for("criminal")
    notify = admin.actions["notify"]
    good = {
        "facts": "打架",
        "reasons_and_basis": "治安管理处罚法第43条",
        "hearing_requested": False,
    }
    assert notify.payload_errors(good) == {}
    assert notify.payload_errors({}) == {
        "facts": ["Missing required input."],
        "reasons_and_basis": ["Missing required input."],
        "hearing_requested": ["Missing required input."],
    }
    # A required input sent as null counts as missing.
    assert notify.payload_errors({**good, "hearing_requested": None}) == {
        "hearing_requested": ["Missing required input."]
    }
    assert notify.payload_errors({**good, "hearing_requested": "no"}) == {
        "hearing_requested": ["Must be true or false."]
    }
    # Unknown inputs are rejected, alongside the other problems.
    assert notify.payload_errors({**good, "witness": "李四", "facts": ""}) == {
        "witness": ["Unknown input."],
        "facts": ["Must be a non-empty string."],
    }
    # Optional inputs may be left out or sent as null, but are checked when sent.
    execute = admin.actions["execute"]
    served = {"served_at": "2026-03-02T10:00:00+08:00"}
    assert execute.payload_errors(served) == {}
    assert execute.payload_errors({**served, "execution_note": None}) == {}
    assert execute.payload_errors({**served, "execution_note": ""}) == {
        "execution_note": ["Must be a non-empty string."]
    }
    assert execute.payload_errors({"served_at": "2026-03-02T10:00:00"}) == {
        "served_at": ["Must be an ISO 8601 date-time with a time zone."]
    }
    decision = admin.actions["submit_decision"]
    assert decision.payload_errors({"penalty": "fine", "penalty_detail": "罚款500元"}) == {}
    assert decision.payload_errors({"penalty": "flogging", "penalty_detail": "x"}) == {
        "penalty": ["Must be one of: warning, fine, detention, confiscation."]
    }
    detain = criminal.actions["detain"]
    assert detain.payload_errors({"starts_at": "2026-03-02T10:00:00+08:00"}) == {
        "person_id": ["Missing required input."]
    }
    # Actions without inputs accept only an empty payload.
    close = admin.actions["close"]
    assert close.inputs == ()
    assert close.payload_errors({}) == {}
    assert close.payload_errors({"note": "x"}) == {"note": ["Unknown input."]}


# GET /api/v1/workflows


def expected_from_toml(raw: dict[str, Any]) -> dict[str, Any]:
    return {
        "case_type": raw["case_type"],
        "initial": raw["initial"],
        "label": raw["name"],
        "states": [
            {
                "name": name,
                "label": {"zh": spec["zh"], "en": spec["en"]},
                "terminal": spec.get("terminal", False),
                "deadline_hours": spec.get("deadline_hours"),
                "basis": spec.get("basis"),
            }
            for name, spec in raw["states"].items()
        ],
        "actions": [
            {
                "name": name,
                "label": spec["name"],
                "from": spec["from"],
                "to": spec["to"],
                "roles": sorted(spec["roles"]),
                "approvals": [
                    {"role": s["role"], "state": s.get("state")} for s in spec.get("approvals", [])
                ],
                "inputs": [
                    {
                        "name": i["name"],
                        "type": i["type"],
                        "required": i.get("required", True),
                        "choices": i.get("choices", []),
                        "label": {"zh": i["zh"], "en": i["en"]},
                    }
                    for i in spec.get("inputs", [])
                ],
                "requires_signed": spec.get("requires_signed", []),
            }
            for name, spec in raw["actions"].items()
        ],
    }


def test_get_workflows_serves_the_toml_data(api: Any, world: Any) -> None:
    for user in ("a1.officer", "a1.legal", "city.manager", "b1.leader"):
        response = api.get("/api/v1/workflows", world.user(user))
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        assert len(body) == 2
        by_type = {w["case_type"]: w for w in body}
        assert set(by_type) == {"administrative", "criminal"}
        for case_type in TOML_FILES:
            assert by_type[case_type] == expected_from_toml(raw_workflow(case_type))


def test_get_workflows_needs_a_token(api: Any) -> None:
    response = api.get("/api/v1/workflows")
    assert response.status_code == 401
    assert response.content_type == "application/problem+json"
    response = api.get("/api/v1/workflows", headers={"Authorization": "Bearer not-a-token"})
    assert response.status_code == 401
