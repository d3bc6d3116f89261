"""A case: summary, timeline, documents, evidence and the steps the workflow allows now.

Requesting a step works offline: its inputs come from the shared workflow
definition, are checked on the device and the request is queued in the outbox.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kivy.properties import DictProperty, ListProperty, StringProperty

from mobile.i18n import _, label
from mobile.screens.base import BaseScreen
from mobile.services import forms
from mobile.services.forms import FormErrors
from mobile.widgets import Field, FlatButton, ListRow, PrimaryButton


def when(value: str | None) -> str:
    if not value:
        return ""
    return datetime.fromisoformat(value).astimezone().strftime("%Y-%m-%d %H:%M")


def event_text(event: dict[str, Any], case_type: str) -> str:
    names = {
        "transition": _("Step taken"),
        "step_requested": _("Step requested"),
        "step_approved": _("Step approved"),
        "step_returned": _("Step returned"),
        "person_added": _("Person added"),
        "evidence_added": _("Evidence added"),
        "evidence_disposed": _("Evidence disposed of"),
        "evidence_disposal_requested": _("Disposal of evidence requested"),
        "evidence_disposal_returned": _("Disposal of evidence returned"),
        "document_created": _("Document created"),
        "document_finalized": _("Document finalized"),
        "document_signed": _("Document signed"),
        "fact_recorded": _("Fact recorded"),
    }
    text = names.get(event.get("type", ""), event.get("type", ""))
    if event.get("action"):
        text += " · " + action_label(case_type, event["action"])
    return text


def action_label(case_type: str, action: str) -> str:
    """The workflow's label of an action, in the current language."""
    try:
        return label(forms.action_of(case_type, action).label.as_dict())
    except FormErrors:
        return action


class CaseScreen(BaseScreen):
    case_id = StringProperty("")
    detail = DictProperty({})
    action = StringProperty("")
    fields = ListProperty([])
    message = StringProperty("")

    def open(self, case_id: str = "", **_arguments: Any) -> None:
        self.case_id = case_id
        self.action = ""
        self.message = ""

    def refresh(self) -> None:
        self.detail = self.state.case(self.case_id) or {}
        case = self.detail.get("case", {})
        self.ids.bar.title = case.get("title", "") or _("Case")
        self.ids.number.text = case.get("number", "")
        self.ids.status.text = label(case.get("status_label")) or case.get("status", "")
        self.ids.due.text = (
            _("Due {when}").format(when=when(case.get("due_at")))
            if case.get("due_at")
            else _("No deadline")
        )
        self.ids.summary.text = case.get("summary", "")
        self.ids.pending.text = (
            _("A step is waiting for approval.") if case.get("pending_request_id") else ""
        )
        self._fill_actions()
        self._fill_rows(
            self.ids.timeline,
            [
                (
                    event_text(e, case.get("case_type", "")),
                    when(e.get("at")),
                    e.get("comment") or "",
                )
                for e in reversed(self.detail.get("events", []))
            ],
            _("No events yet."),
        )
        self._fill_rows(
            self.ids.evidence,
            [
                (e.get("description") or e.get("kind", ""), e.get("sha256", "")[:16], "")
                for e in self.detail.get("evidence", [])
            ],
            _("No evidence yet."),
        )
        self._fill_rows(
            self.ids.documents,
            [
                (d.get("title") or d.get("kind", ""), d.get("status", ""), "")
                for d in self.detail.get("documents", [])
            ],
            _("No documents yet."),
        )

    def _fill_rows(self, box: Any, rows: list[tuple[str, str, str]], empty: str) -> None:
        box.clear_widgets()
        for title, subtitle, extra in rows:
            box.add_widget(
                ListRow(title=title, subtitle=" · ".join(p for p in (subtitle, extra) if p))
            )
        if not rows:
            box.add_widget(ListRow(title=empty, subtitle=""))

    def _fill_actions(self) -> None:
        box = self.ids.actions
        box.clear_widgets()
        actions = self.detail.get("actions", [])
        for action in actions:
            button = FlatButton(text=label(action.get("label")) or action["name"])
            button.action_name = action["name"]
            button.bind(on_release=lambda b: self.choose(b.action_name))
            box.add_widget(button)
        if not actions:
            box.add_widget(ListRow(title=_("No step is possible now."), subtitle=""))
        self._fill_form()

    def choose(self, action: str) -> None:
        self.action = action
        self.message = ""
        self._fill_form()

    def _fill_form(self) -> None:
        form = self.ids.form
        form.clear_widgets()
        if not self.action:
            return
        case = self.detail.get("case", {})
        form.add_widget(
            ListRow(title=self._action_label(), subtitle=_("Fill in the inputs of this step."))
        )
        self._inputs: dict[str, Field] = {}
        for spec in self.state.workflow_form(case.get("case_type", ""), self.action):
            field = Field(label=label(spec.get("label")) or spec["name"])
            if spec.get("choices"):
                field.hint = " / ".join(spec["choices"])
            if spec.get("type") == "boolean":
                field.hint = "true / false"
            self._inputs[spec["name"]] = field
            form.add_widget(field)
        comment = Field(label=_("Comment"), multiline=True)
        self._inputs["__comment__"] = comment
        form.add_widget(comment)
        submit = PrimaryButton(text=_("Request this step"))
        submit.bind(on_release=lambda _b: self.submit())
        form.add_widget(submit)

    def _action_label(self) -> str:
        for action in self.detail.get("actions", []):
            if action["name"] == self.action:
                return label(action.get("label")) or action["name"]
        return self.action

    def submit(self) -> None:
        values = {name: field.text for name, field in self._inputs.items()}
        comment = values.pop("__comment__").strip() or None
        try:
            self.state.request_step(
                self.case_id, self.action, values, comment, self.detail.get("etag")
            )
        except FormErrors as error:
            for name, field in self._inputs.items():
                field.error = " ".join(error.errors.get(name, []))
            self.message = _("Please complete the marked fields.")
            return
        self.action = ""
        self.app.notify(_("Step saved. It is sent as soon as the server is reachable."))
        self.refresh()

    def add_evidence(self) -> None:
        self.app.show("evidence", case_id=self.case_id)

    def new_transcript(self) -> None:
        self.app.show("transcript", case_id=self.case_id)
