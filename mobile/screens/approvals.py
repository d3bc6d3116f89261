"""Approvals (legal officers, leaders): pending steps of their units with the case
context; approve, or return with a comment. Decisions are queued like any step."""

from __future__ import annotations

from typing import Any

from kivy.properties import StringProperty
from kivy.uix.boxlayout import BoxLayout

from mobile.i18n import _
from mobile.screens.base import BaseScreen
from mobile.screens.case import action_label


class ApprovalEntry(BoxLayout):
    approval_id = StringProperty("")
    case_title = StringProperty("")
    action = StringProperty("")
    context = StringProperty("")
    error = StringProperty("")


def context_text(approval: dict[str, Any]) -> str:
    request = approval.get("request", {})
    case = approval.get("case", {})
    parts = [case.get("number", ""), case.get("summary", "")]
    if request.get("comment"):
        parts.append(_("Comment: {comment}").format(comment=request["comment"]))
    return "\n".join(p for p in parts if p)


class ApprovalsScreen(BaseScreen):
    def refresh(self) -> None:
        approvals = self.state.pending_approvals()
        box = self.ids.entries
        box.clear_widgets()
        for approval in approvals:
            request = approval.get("request", {})
            box.add_widget(
                ApprovalEntry(
                    approval_id=approval["id"],
                    case_title=approval.get("case", {}).get("title", ""),
                    action=action_label(
                        approval.get("case", {}).get("case_type", ""), request.get("action", "")
                    ),
                    context=context_text(approval),
                )
            )
        self.ids.empty.shown = not approvals

    def decide(self, entry: ApprovalEntry, decision: str) -> None:
        comment = entry.ids.comment.text.strip()
        if decision == "return" and not comment:
            entry.error = _("A returned step needs a comment saying why.")
            return
        self.state.decide(entry.approval_id, decision, comment or None)
        self.app.notify(
            _("Approved. The decision is sent as soon as the server is reachable.")
            if decision == "approve"
            else _("Returned. The decision is sent as soon as the server is reachable.")
        )
        self.refresh()
