"""Workflow-driven forms of the mobile client: the inputs of each action, typed and
checked offline with the rules the server applies."""

from __future__ import annotations

from pathlib import Path

import pytest

from mobile.services import forms
from mobile.services.forms import FieldSpec, FormErrors
from mobile.services.outbox import Outbox
from mobile.services.store import LocalStore
from mobile.state import AppState
from shared.workflow import load_workflows

from conftest import Api, Org

NOTICE_TEXT = {"facts": "在夜市互殴", "reasons_and_basis": "治安管理处罚法第四十三条"}


def test_every_action_of_every_workflow_has_its_inputs_as_field_specs() -> None:
    for case_type, workflow in load_workflows().items():
        for action in workflow.actions.values():
            specs = forms.workflow_form(case_type, action.name)
            assert [s.name for s in specs] == [i.name for i in action.inputs]
            for spec, declared in zip(specs, action.inputs, strict=True):
                assert spec.type == declared.type
                assert spec.required == declared.required
                assert spec.choices == list(declared.choices)
                assert spec.label == declared.label.as_dict()


def test_field_specs_read_like_the_servers_action_specs() -> None:
    spec = forms.workflow_form("administrative", "submit_decision")[0]
    assert isinstance(spec, FieldSpec)
    assert spec["name"] == "penalty" and spec.get("type") == "choice"
    assert spec.get("label") == {"zh": "处罚种类", "en": "Penalty"}
    assert spec.get("nothing", "default") == "default"
    assert spec.label_in("en") == "Penalty" and spec.label_in("zh_CN") == "处罚种类"


@pytest.mark.parametrize(
    ("entered", "expected"),
    [("否", False), ("no", False), ("是", True), ("TRUE", True), (True, True)],
)
def test_a_yes_or_no_is_read_in_both_languages(entered: object, expected: bool) -> None:
    payload = forms.parse_payload(
        "administrative", "notify", {**NOTICE_TEXT, "hearing_requested": entered}
    )
    assert payload == {**NOTICE_TEXT, "hearing_requested": expected}


def test_an_empty_optional_input_is_left_out_and_a_time_is_kept_with_its_offset() -> None:
    payload = forms.parse_payload(
        "administrative", "execute", {"served_at": "2026-03-02 10:00+08:00", "execution_note": ""}
    )
    assert payload == {"served_at": "2026-03-02T10:00:00+08:00"}


@pytest.mark.parametrize(
    ("action", "values", "field", "message"),
    [
        ("notify", {**NOTICE_TEXT}, "hearing_requested", "Missing required input."),
        ("notify", {**NOTICE_TEXT, "hearing_requested": "maybe"}, "hearing_requested", "true"),
        ("notify", {**NOTICE_TEXT, "hearing_requested": "否", "x": "1"}, "x", "Unknown input."),
        ("execute", {"served_at": "2026-03-02 10:00"}, "served_at", "time zone"),
        ("submit_decision", {"penalty": "jail", "penalty_detail": "x"}, "penalty", "one of"),
        ("revoke", {"reason": "   "}, "reason", "Missing required input."),
    ],
)
def test_input_the_server_would_refuse_is_refused_offline(
    action: str, values: dict[str, object], field: str, message: str
) -> None:
    with pytest.raises(FormErrors) as refused:
        forms.parse_payload("administrative", action, values)
    assert message in " ".join(refused.value.errors[field])


def test_an_unknown_action_is_refused() -> None:
    with pytest.raises(FormErrors) as refused:
        forms.workflow_form("administrative", "fly_away")
    assert "action" in refused.value.errors


def test_the_actions_offered_offline_follow_the_state_and_the_roles() -> None:
    officer = forms.available_actions("administrative", "investigating", ["officer"])
    assert {a["name"] for a in officer} == {
        "notify",
        "decide_no_punishment",
        "transfer",
        "convert_to_criminal",
        "revoke",
    }
    assert forms.available_actions("administrative", "investigating", ["legal_officer"]) == []
    assert forms.available_actions("administrative", "closed", ["officer"]) == []
    assert forms.state_label("administrative", "notified") == {"zh": "已告知", "en": "Notified"}


def test_a_step_prepared_offline_is_accepted_by_the_server(api: Api, world: Org) -> None:
    officer = world.user("a1.officer")
    case = api.case(officer)
    assert api.step(case["id"], officer, "start_investigation").status_code == 200
    payload = forms.parse_payload(
        "administrative", "notify", {**NOTICE_TEXT, "hearing_requested": "否"}
    )
    answer = api.step(case["id"], officer, "notify", payload, "已告知")
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["case"]["status"] == "notified"


def test_the_app_queues_no_step_with_bad_input(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "fieldcase.db")
    outbox = Outbox(store)
    state = AppState(store, outbox, worker=None, files_dir=tmp_path / "files")  # type: ignore[arg-type]
    report = state.outbox.enqueue(
        "incident",
        {
            "occurred_at": "2026-03-01T09:30:00+08:00",
            "place": "人民路1号",
            "category": "治安",
            "summary": "互殴",
            "accept": {"case_type": "administrative", "title": "夜市斗殴"},
        },
        title="r",
    )
    case_id = report.payload["accept"]["case_id"]
    with pytest.raises(FormErrors):
        state.request_step(case_id, "notify", {"facts": "x"}, None, None)
    assert [item.kind for item in outbox.all()] == ["incident"]


def test_the_app_offers_no_document_kind_the_platform_writes(
    tmp_path: Path, api: Api, world: Org
) -> None:
    store = LocalStore(tmp_path / "fieldcase.db")
    outbox = Outbox(store)
    state = AppState(store, outbox, worker=None, files_dir=tmp_path / "files")  # type: ignore[arg-type]
    catalogue = api.get("/api/v1/document-templates", world.user("a1.officer")).get_json()
    store.cache_templates(catalogue)
    report = state.outbox.enqueue(
        "incident",
        {
            "occurred_at": "2026-03-01T09:30:00+08:00",
            "place": "人民路1号",
            "category": "刑事",
            "summary": "抢夺",
            "accept": {"case_type": "criminal", "title": "夜市抢夺"},
        },
        title="r",
    )
    case_id = report.payload["accept"]["case_id"]
    offered = [k["id"] for k in state.transcript_kinds(case_id)]
    assert "interrogation_record" in offered and "identification_record" not in offered
    with pytest.raises(FormErrors) as refused:
        state.start_transcript(case_id, "identification_record", None)
    assert "kind" in refused.value.errors
