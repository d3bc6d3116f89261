"""Checklist W1: steps only in the order the workflow allows; decided steps are final.

A hypothesis ``RuleBasedStateMachine`` drives the HTTP API with random case
types, valid and invalid steps, approvals and returns by the right and the wrong
people, stale and missing ETags, and checks after every step that

- the case and its event log agree with a model of the case;
- the log is gap-free (seq 1..n) and, replayed against the workflow alone,
  never skips a step: each transition leaves the state the case was in along an
  edge of the workflow, and a transition whose action needs approvals follows
  exactly those approvals (stage order, roles, not by the requester);
- refused requests change nothing; decided approvals cannot be decided again;
- terminal states are final;
- a step that requires signed documents is never approved, at any stage,
  before the case holds them signed (drafts and records signed by only some
  of their signers do not count); it may be requested and returned before.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from flask.testing import FlaskClient
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from shared.enums import Role
from shared.workflow import Action, Input, Workflow, workflow_for

from conftest import Api, Org, OrgUser
from support_documents import (
    Device,
    display_name,
    enroll,
    finalized,
    new_document,
    sign_required,
)

MAX_OPEN_CASES = 2
MAX_CASES = 5
PROBLEM = "application/problem+json"
OFFICERS = ("a1.officer", "a1.officer2", "dual")
NON_OFFICERS = ("a1.legal", "a1.leader", "a1.manager")
DECIDERS = (
    "a1.legal",
    "a.legal",
    "city.legal",
    "a1.leader",
    "a.leader",
    "city.leader",
    "dual",
    "a1.officer",
    "a1.manager",
    "a2.legal",
    "b1.leader",
)
A1_VISIBLE = ("a1.", "a.", "city.", "dual")
TEXTS = ("事实清楚", "reason given", "见附件")
DATETIMES = ("2026-03-02T08:00:00+08:00", "2026-03-02T00:00:00Z", "2026-03-02 08:00:00.5+00:00")
WRONG = {
    "text": ["", "   ", 17, True],
    "person": ["", 17, None],
    "boolean": ["true", 1],
    "integer": ["3", 2.5, True],
    "datetime": ["2026-03-02T08:00:00", "2026-03-02", "tomorrow"],
    "choice": ["caning", ""],
}
RECORD = "notification_record"
"""The one kind a step requires signed (``submit_decision``); the machine makes such records."""


@dataclass(repr=False)
class Pending:
    request_id: str
    action: Action
    from_state: str
    requester: OrgUser
    payload: dict[str, Any]
    comment: str | None
    stage: int = 0
    approval_id: str | None = None  # of the stage now pending, once looked up
    approved: list[tuple[str, OrgUser]] = field(default_factory=list)

    def __repr__(self) -> str:
        return f"Pending({self.action.name} from {self.from_state}, stage {self.stage})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # for hypothesis reports
        printer.text(repr(self))


@dataclass(repr=False)
class CaseModel:
    id: str
    workflow: Workflow
    state: str
    etag: str
    persons: list[str]
    events: list[dict[str, Any]] = field(default_factory=list)
    pending: Pending | None = None
    old_etags: list[str] = field(default_factory=list)
    signed: set[str] = field(default_factory=set)  # kinds of the case's signed documents

    def __repr__(self) -> str:
        kind = self.workflow.case_type
        return f"CaseModel({kind} {self.id}, {self.state}, {self.pending}, {self.etag})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # for hypothesis reports
        printer.text(repr(self))

    @property
    def terminal(self) -> bool:
        return self.workflow.is_terminal(self.state)

    def record(self, kind: str, actor: OrgUser, **fields: Any) -> None:
        self.events.append(
            {
                "type": kind,
                "actor_id": str(actor.id),
                "action": fields.get("action"),
                "from_state": fields.get("from_state"),
                "to_state": fields.get("to_state"),
                "request_id": fields.get("request_id"),
                "comment": fields.get("comment"),
                **({"payload": fields["payload"]} if "payload" in fields else {}),
            }
        )

    def unsigned(self, action: Action) -> list[str]:
        return [kind for kind in action.requires_signed if kind not in self.signed]

    def new_etag(self, etag: str) -> None:
        assert etag != self.etag, "a change must give the case a new ETag"
        self.old_etags.append(self.etag)
        self.etag = etag


def problem(response: Any, status: int, slug: str | None = None) -> dict[str, Any]:
    body = response.get_json(force=True)
    assert response.status_code == status, (status, body)
    assert response.content_type == PROBLEM
    if slug:
        assert body["type"] == f"urn:fieldcase:problem:{slug}", body
    return body


def replay(
    workflow: Workflow, events: list[dict[str, Any]], roles: dict[str, frozenset[Role]]
) -> tuple[str, str | None]:
    """Walk the log against the workflow alone; return (state, pending request id).

    Independent of the model: this is what any log the API writes must satisfy.
    """
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    first = events[0]
    assert (first["type"], first["action"], first["from_state"]) == (
        "transition",
        "accept",
        workflow.initial,
    )
    state, pending = workflow.initial, None
    stage, approvers = 0, []
    signed: set[str] = set()
    for event in events:
        assert not workflow.is_terminal(state), f"event after terminal state {state}: {event}"
        kind = event["type"]
        if kind == "document_signed":
            signed.add(event["payload"]["kind"])
        if kind in ("person_added", "document_created", "document_finalized", "document_signed"):
            continue
        action = workflow.actions[event["action"]]
        if kind == "transition" and event["request_id"] is None:
            assert pending is None, event
            assert not action.needs_approval, f"{action.name} applied without approval"
            assert event["from_state"] == state, event
            assert state in action.sources and event["to_state"] == action.target, event
            assert Role.OFFICER in roles[event["actor_id"]]
            state = action.target
        elif kind == "step_requested":
            assert pending is None, event
            assert action.needs_approval and state in action.sources, event
            assert event["from_state"] == state, event
            assert Role.OFFICER in roles[event["actor_id"]]
            pending = dict(event)
            stage, approvers = 0, []
            state = action.approvals[0].state or pending["from_state"]
            assert event["to_state"] == state
        elif kind == "step_approved":
            assert pending and event["request_id"] == pending["request_id"], event
            assert event["action"] == pending["action"]
            spec = action.approvals[stage]
            assert event["payload"]["stage"] == stage, event
            assert event["payload"]["role"] == spec.role, event
            assert spec.role in roles[event["actor_id"]], event
            assert event["actor_id"] != pending["actor_id"], "decided by the requester"
            assert set(action.requires_signed) <= signed, "approved before documents signed"
            approvers.append(event["actor_id"])
            stage += 1
            if stage < len(action.approvals):
                state = action.approvals[stage].state or pending["from_state"]
        elif kind == "transition":
            assert pending and event["request_id"] == pending["request_id"], event
            assert event["action"] == pending["action"]
            assert stage == len(action.approvals), "applied before every stage approved"
            assert event["actor_id"] == approvers[-1]
            assert event["from_state"] == pending["from_state"], event
            assert event["to_state"] == action.target
            assert event["payload"] == pending["payload"]
            state, pending = action.target, None
        elif kind == "step_returned":
            assert pending and event["request_id"] == pending["request_id"], event
            assert event["comment"] and event["comment"].strip()
            assert event["from_state"] == event["to_state"] == pending["from_state"]
            assert event["payload"]["stage"] == stage
            assert action.approvals[stage].role in roles[event["actor_id"]]
            assert event["actor_id"] != pending["actor_id"], "returned by the requester"
            state, pending = pending["from_state"], None
        else:
            raise AssertionError(f"unexpected event {event}")
    return state, pending["request_id"] if pending else None


class WorkflowMachine(RuleBasedStateMachine):
    def __init__(self, api: Api, users: dict[str, OrgUser], device: Device) -> None:
        super().__init__()
        self.api = api
        self.users = users
        self.device = device  # a1.officer's, to sign documents
        self.roles = {str(u.id): u.roles for u in users.values()}
        self.models: dict[str, CaseModel] = {}
        self.decided: list[tuple[str, str, str, Role, OrgUser]] = []
        self.touched: set[str] = set()  # cases a rule acted on: checked after the step
        self.changed: set[str] = set()  # cases whose state changed: their actions too

    # Helpers

    def user(self, name: str) -> OrgUser:
        return self.users[name]

    def pick_case(self, data: Any) -> CaseModel:
        """Any case, more often one that can move on (in creation order: draws
        must not depend on random ids)."""
        models = list(self.models.values())
        movable = [m for m in models if not m.pending and not m.terminal]
        model = data.draw(st.sampled_from(movable * 4 + models), label="case")
        self.touched.add(model.id)
        return model

    def case_events(self, case_id: str) -> list[dict[str, Any]]:
        response = self.api.get(f"/api/v1/cases/{case_id}/events", self.user("a1.officer"))
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    def find_approval(self, model: CaseModel) -> str:
        """The id of the stage now pending, looked up as a user of that stage's role."""
        pending = model.pending
        assert pending is not None
        if pending.approval_id:
            return pending.approval_id
        role = pending.action.approvals[pending.stage].role
        user = self.user("a1.legal" if role == Role.LEGAL_OFFICER else "a1.leader")
        cursor = ""
        while True:
            response = self.api.get(f"/api/v1/approvals?status=pending&limit=5{cursor}", user)
            assert response.status_code == 200, response.get_json()
            body = response.get_json()
            found = [a for a in body["items"] if a["case_id"] == model.id]
            if found:
                break
            assert body["next_cursor"], f"no pending approval listed for {model.id}"
            cursor = f"&cursor={body['next_cursor']}"
        assert len(found) == 1, found
        approval = found[0]
        assert approval["request_id"] == pending.request_id
        assert (approval["stage"], approval["role"]) == (pending.stage, role)
        pending.approval_id = approval["id"]
        return approval["id"]

    def valid_payload(self, data: Any, model: CaseModel, action: Action) -> dict[str, Any]:
        payload = {}
        for spec in action.inputs:
            if not spec.required and data.draw(st.booleans(), label=f"send {spec.name}"):
                continue
            payload[spec.name] = self.valid_value(data, model, spec)
        return payload

    def valid_value(self, data: Any, model: CaseModel, spec: Input) -> Any:
        strategy = {
            "text": st.sampled_from(TEXTS),
            "boolean": st.booleans(),
            "integer": st.integers(-5, 5),
            "datetime": st.sampled_from(DATETIMES),
            "choice": st.sampled_from(spec.choices or ("x",)),
            "person": st.sampled_from(model.persons),
        }[spec.type]
        return data.draw(strategy, label=spec.name)

    # Rules

    @initialize(case_type=st.sampled_from(["administrative", "criminal"]))
    def first_case(self, case_type: str) -> None:
        self.new_case(case_type, "a1.officer")

    @precondition(
        lambda self: (
            len(self.models) < MAX_CASES
            and sum(not m.terminal for m in self.models.values()) < MAX_OPEN_CASES
        )
    )
    @rule(
        case_type=st.sampled_from(["administrative", "criminal"]),
        officer=st.sampled_from(OFFICERS),
    )
    def create_case(self, case_type: str, officer: str) -> None:
        self.new_case(case_type, officer)

    def new_case(self, case_type: str, officer_name: str) -> None:
        officer = self.user(officer_name)
        case = self.api.case(officer, case_type)
        workflow = workflow_for(case_type)
        model = CaseModel(
            id=case["id"],
            workflow=workflow,
            state=case["status"],
            etag="",  # read once the suspect is added
            persons=[],
        )
        model.record(
            "transition",
            officer,
            action="accept",
            from_state=workflow.initial,
            to_state="accepted",
            payload={},
        )
        response = self.api.post(
            f"/api/v1/cases/{model.id}/persons",
            officer,
            json={"role": "suspect", "name": "嫌疑人", "id_number": "110101198505051234"},
        )
        assert response.status_code == 201, response.get_json()
        suspect = response.get_json()["id"]
        model.record("person_added", officer, payload={"person_id": suspect, "role": "suspect"})
        model.etag = self.api.etag(model.id, officer)
        model.persons = [suspect]
        self.models[model.id] = model
        self.touched.add(model.id)
        self.changed.add(model.id)

    @rule(data=st.data())
    def request_step(self, data: Any) -> None:
        model = self.pick_case(data)
        case_id, workflow = model.id, model.workflow
        user_name = data.draw(st.sampled_from(OFFICERS * 5 + NON_OFFICERS), label="requester")
        user = self.user(user_name)
        open_actions = [] if model.pending else workflow.actions_from(model.state)
        choice = data.draw(
            st.sampled_from(
                ["allowed"] * 10 + ["any", "unknown", "accept", "bad_payload", "foreign_person"]
            ),
            label="kind",
        )
        if choice == "allowed" and open_actions:
            # Favour steps that keep the case open, so that runs get deep.
            onward = [a.name for a in open_actions if not workflow.is_terminal(a.target)]
            names = onward * 3 + [a.name for a in open_actions]
            action_name = data.draw(st.sampled_from(names), label="action")
        elif choice == "unknown":
            action_name = data.draw(st.sampled_from(["fly", "Close", "file-case", "x" * 64]))
        elif choice == "accept":
            action_name = "accept"
        else:
            action_name = data.draw(st.sampled_from(sorted(workflow.actions)), label="action")
        action = workflow.actions.get(action_name)
        payload, payload_ok = {}, True
        if action is not None:
            payload = self.valid_payload(data, model, action)
            if choice == "bad_payload":
                payload_ok = False
                payload = self.spoil(data, action, payload)
            elif choice == "foreign_person" and any(i.type == "person" for i in action.inputs):
                payload_ok = False
                name = next(i.name for i in action.inputs if i.type == "person")
                others = [p for m in self.models.values() if m.id != case_id for p in m.persons]
                payload[name] = data.draw(st.sampled_from([*others, str(uuid.uuid4())]))
        comment = data.draw(st.sampled_from([None, "请审批", "补充材料后再报"]), label="comment")
        etag_mode = data.draw(
            st.sampled_from(["current"] * 10 + ["stale", "missing"]), label="if-match"
        )
        headers = {}
        if etag_mode == "current":
            headers["If-Match"] = model.etag
        elif etag_mode == "stale":
            fabricated = f'"{uuid.UUID(case_id).hex}.0"'
            headers["If-Match"] = data.draw(st.sampled_from([*model.old_etags, fabricated]))
        response = self.api.post(
            f"/api/v1/cases/{case_id}/transitions",
            user,
            headers=headers,
            json={"action": action_name, "payload": payload, "comment": comment},
        )

        # What the API must answer, in the order it checks.
        if Role.OFFICER not in user.roles:
            problem(response, 403)
        elif etag_mode == "missing":
            problem(response, 428, "precondition-required")
        elif etag_mode == "stale":
            body = problem(response, 412, "precondition-failed")
            assert body["current_etag"] == model.etag
        elif action is None or action_name == "accept":
            body = problem(response, 422)
            assert body["errors"] == {"json": {"action": ["Unknown action."]}}
        elif model.terminal:
            problem(response, 409, "case-closed")
        elif model.pending:
            problem(response, 409, "step-pending")
        elif model.state not in action.sources:
            problem(response, 409, "action-not-allowed")
        elif not payload_ok:
            body = problem(response, 422)
            assert body["errors"]["json"]["payload"], body
        else:
            self.accepted_step(model, user, action, payload, comment, response)

    def awaiting_record(self) -> list[CaseModel]:
        """Cases where a step offered now, or pending, still needs a signed record."""
        return [
            m
            for m in self.models.values()
            if not m.terminal
            and any(
                RECORD in m.unsigned(a)
                for a in ([m.pending.action] if m.pending else m.workflow.actions_from(m.state))
            )
        ]

    @precondition(lambda self: self.awaiting_record())
    @rule(data=st.data())
    def make_notification_record(self, data: Any) -> None:
        """A notification record about the case's suspect: left a draft, finalised,
        signed by the officers only, or signed by everyone it needs."""
        candidates = self.awaiting_record()
        model = data.draw(st.sampled_from(candidates), label="case")
        self.touched.add(model.id)
        # Signed mostly once a step waits for it, so that approvals meet unsigned records too.
        signed = ["signed"] * (3 if model.pending else 1)
        level = data.draw(
            st.sampled_from([*signed, "draft", "finalized", "officers"]), label="record"
        )
        officer, second = self.user("a1.officer"), self.user("a1.officer2")
        document, etag = new_document(self.api, officer, model.id, RECORD, model.persons[0])
        model.record("document_created", officer)
        if level != "draft":
            document = finalized(self.api, officer, document, etag)
            model.record("document_finalized", officer)
        if level == "officers":
            for role, user in (("officer", officer), ("second_officer", second)):
                response = self.device.sign(document, role, display_name(user), user=user)
                assert response.status_code == 201, response.get_json()
        if level == "signed":
            for response in sign_required(self.device, document, (officer, second), "嫌疑人"):
                assert response.status_code == 201, response.get_json()
            model.record("document_signed", officer)
            model.signed.add(RECORD)
        model.new_etag(self.api.etag(model.id, officer))

    def spoil(self, data: Any, action: Action, payload: dict[str, Any]) -> dict[str, Any]:
        ways = ["extra"]
        if any(i.required for i in action.inputs):
            ways.append("missing")
        if action.inputs:
            ways.append("wrong")
        way = data.draw(st.sampled_from(ways), label="spoil")
        if way == "extra":
            return {**payload, data.draw(st.sampled_from(["note", "to_state", "status"])): "x"}
        if way == "missing":
            required = [i.name for i in action.inputs if i.required]
            name = data.draw(st.sampled_from(required))
            return {k: v for k, v in payload.items() if k != name}
        spec = data.draw(st.sampled_from(action.inputs), label="wrong input")
        return {**payload, spec.name: data.draw(st.sampled_from(WRONG[spec.type]))}

    def accepted_step(
        self,
        model: CaseModel,
        user: OrgUser,
        action: Action,
        payload: dict[str, Any],
        comment: str | None,
        response: Any,
    ) -> None:
        body = response.get_json()
        if not action.needs_approval:
            assert response.status_code == 200, body
            assert body["outcome"] == "applied" and body["request"] is None
            model.record(
                "transition",
                user,
                action=action.name,
                from_state=model.state,
                to_state=action.target,
                comment=comment,
                payload=payload,
            )
            model.state = action.target
        else:
            assert response.status_code == 202, body
            assert body["outcome"] == "pending"
            request = body["request"]
            assert (request["action"], request["from_state"], request["to_state"]) == (
                action.name,
                model.state,
                action.target,
            )
            assert (request["stage"], request["status"]) == (0, "pending")
            shown = action.approvals[0].state or model.state
            model.record(
                "step_requested",
                user,
                action=action.name,
                from_state=model.state,
                to_state=shown,
                request_id=request["id"],
                comment=comment,
                payload=payload,
            )
            model.pending = Pending(request["id"], action, model.state, user, payload, comment)
            model.state = shown
        assert body["case"]["status"] == model.state
        model.new_etag(response.headers["ETag"])
        self.changed.add(model.id)

    @precondition(lambda self: any(m.pending for m in self.models.values()))
    @rule(data=st.data())
    def decide(self, data: Any) -> None:
        # Now and then (hypothesis favours the ends of a range: test a middle value).
        if self.decided and data.draw(st.integers(0, 9), label="decide again") == 4:
            self.decide_again(data)
            return
        waiting = [m for m in self.models.values() if m.pending]  # in creation order
        model = data.draw(st.sampled_from(waiting), label="case")
        self.touched.add(model.id)
        pending = model.pending
        assert pending is not None
        approval_id = self.find_approval(model)
        spec = pending.action.approvals[pending.stage]
        # Mostly someone who may decide, so that cases move on.
        right = [
            n
            for n in ("a1.legal", "a.legal", "city.legal", "a1.leader", "a.leader", "dual")
            if spec.role in self.user(n).roles and self.user(n) != pending.requester
        ]
        # A requester who holds every role tries often to decide: they must be refused.
        own = ["dual"] * 4 if pending.requester == self.user("dual") else []
        name = data.draw(st.sampled_from(right * 6 + own + list(DECIDERS)), label="decider")
        decider = self.user(name)
        decision = data.draw(st.sampled_from(["approve"] * 3 + ["return"]), label="decision")
        comment = data.draw(st.sampled_from(["同意", "请补充证据", None, "  "]), label="comment")
        response = self.api.decide(approval_id, decider, decision, comment)

        if not decider.roles & {Role.LEGAL_OFFICER, Role.LEADER}:
            problem(response, 403)
        elif not name.startswith(A1_VISIBLE):
            problem(response, 404)
        elif spec.role not in decider.roles or decider == pending.requester:
            problem(response, 403)
        elif decision == "return" and not (comment and comment.strip()):
            body = problem(response, 422)
            assert body["errors"] == {"json": {"comment": ["Required when returning."]}}
        elif decision == "approve" and model.unsigned(pending.action):
            body = problem(response, 409, "documents-unsigned")
            assert body["missing_signed"] == model.unsigned(pending.action)
        else:
            self.decided_step(model, approval_id, decider, decision, comment, response)

    def decided_step(
        self,
        model: CaseModel,
        approval_id: str,
        decider: OrgUser,
        decision: str,
        comment: str | None,
        response: Any,
    ) -> None:
        pending = model.pending
        assert pending is not None
        body = response.get_json()
        assert response.status_code == 200, body
        action, stage = pending.action, pending.stage
        role = action.approvals[stage].role
        marks = {"stage": stage, "role": str(role), "approval_id": approval_id}
        status = "approved" if decision == "approve" else "returned"
        self.decided.append((model.id, approval_id, status, role, decider))
        if decision == "return":
            model.record(
                "step_returned",
                decider,
                action=action.name,
                from_state=pending.from_state,
                to_state=pending.from_state,
                request_id=pending.request_id,
                comment=comment,
                payload=marks,
            )
            model.state, model.pending = pending.from_state, None
            assert body["outcome"] == "returned"
        else:
            model.record(
                "step_approved",
                decider,
                action=action.name,
                request_id=pending.request_id,
                comment=comment,
                payload=marks,
            )
            pending.approved.append((approval_id, decider))
            if stage + 1 < len(action.approvals):
                pending.stage, pending.approval_id = stage + 1, None
                model.state = action.approvals[stage + 1].state or pending.from_state
                assert body["outcome"] == "pending"
            else:
                model.record(
                    "transition",
                    decider,
                    action=action.name,
                    from_state=pending.from_state,
                    to_state=action.target,
                    request_id=pending.request_id,
                    comment=pending.comment,
                    payload=pending.payload,
                )
                model.state, model.pending = action.target, None
                assert body["outcome"] == "applied"
                self.check_approvals_before_transition(pending)
        assert body["case"]["status"] == model.state
        model.new_etag(response.headers["ETag"])
        self.changed.add(model.id)

    def check_approvals_before_transition(self, pending: Pending) -> None:
        """Each stage of the applied step is stored as approved, in order, by its role."""
        stages = pending.action.approvals
        assert len(pending.approved) == len(stages)
        for index, (approval_id, decider) in enumerate(pending.approved):
            response = self.api.get(f"/api/v1/approvals/{approval_id}", self.user("city.legal"))
            assert response.status_code == 200, response.get_json()
            stored = response.get_json()
            assert (stored["stage"], stored["role"], stored["status"]) == (
                index,
                stages[index].role,
                "approved",
            )
            assert stored["decided_by"] == str(decider.id)
            assert stored["request"]["status"] == "applied"

    def decide_again(self, data: Any) -> None:
        """A decided approval stays as it was decided."""
        case_id, approval_id, status, role, decider = data.draw(
            st.sampled_from(self.decided), label="decided approval"
        )
        self.touched.add(case_id)
        again = self.user("city.legal" if role == Role.LEGAL_OFFICER else "city.leader")
        decision = data.draw(st.sampled_from(["approve", "return"]))
        problem(self.api.decide(approval_id, again, decision, "再议"), 409, "approval-decided")
        stored = self.api.get(f"/api/v1/approvals/{approval_id}", again).get_json()
        assert (stored["status"], stored["decided_by"]) == (status, str(decider.id))

    # Checks after every step

    @invariant()
    def touched_cases_agree_with_the_model(self) -> None:
        for case_id in sorted(self.touched):
            self.check_case(self.models[case_id], with_actions=case_id in self.changed)
        self.touched.clear()
        self.changed.clear()

    def check_case(self, model: CaseModel, *, with_actions: bool) -> None:
        officer = self.user("a1.officer")
        response = self.api.get(f"/api/v1/cases/{model.id}", officer)
        assert response.status_code == 200
        case = response.get_json()
        assert response.headers["ETag"] == model.etag, "refused requests must change nothing"
        assert case["status"] == model.state
        assert case["pending_request_id"] == (model.pending.request_id if model.pending else None)
        assert case["is_open"] is not model.terminal
        if model.terminal:
            assert case["due_at"] is None

        events = self.case_events(model.id)
        state, pending = replay(model.workflow, events, self.roles)
        assert (state, pending) == (case["status"], case["pending_request_id"])
        assert len(events) == len(model.events), (events, model.events)
        for seen, expected in zip(events, model.events, strict=True):
            assert {k: seen[k] for k in expected} == expected, (seen, expected)

        if with_actions:
            response = self.api.get(f"/api/v1/cases/{model.id}/actions", officer)
            offered = {a["name"]: a for a in response.get_json()}
            if model.terminal or model.pending:
                assert offered == {}
            else:
                expected = model.workflow.actions_from(model.state)
                assert sorted(offered) == sorted(a.name for a in expected)
                for action in expected:
                    shown = offered[action.name]
                    assert shown["requires_signed"] == list(action.requires_signed)
                    assert shown["missing_signed"] == model.unsigned(action)

    def teardown(self) -> None:
        """Cases no rule touched lately are unchanged too."""
        for model in self.models.values():
            self.check_case(model, with_actions=False)


def test_workflow_state_machine(client: FlaskClient, world: Org, multi_role_user: OrgUser) -> None:
    api = Api(client, {})
    users = {**world.users, "dual": multi_role_user}
    device = enroll(api, world.user("a1.officer"))
    run_state_machine_as_test(
        lambda: WorkflowMachine(api, users, device),
        settings=settings(
            max_examples=25,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            # Shrinking a run over the API can take minutes; a failure is
            # reported with its full list of steps instead.
            phases=[Phase.explicit, Phase.reuse, Phase.generate],
        ),
    )
