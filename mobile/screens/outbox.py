"""Outbox: every item not yet confirmed by the server, its state and error; retry,
redo after a conflict, or discard — nothing leaves without the officer seeing it."""

from __future__ import annotations

import json
from typing import Any

from kivy.properties import DictProperty, ListProperty, NumericProperty, StringProperty
from kivy.uix.boxlayout import BoxLayout

from mobile.i18n import _, label
from mobile.screens.base import BaseScreen
from mobile.services import forms
from mobile.widgets import theme


def state_text(state: str) -> str:
    return {
        "waiting": _("Waiting"),
        "sending": _("Sending"),
        "uploading": _("Uploading"),
        "failed": _("Failed"),
        "conflict": _("Conflict"),
        "done": _("Sent"),
    }.get(state, state)


def state_colour(state: str) -> list[float]:
    colours = {
        "waiting": theme.MUTED,
        "sending": theme.PRIMARY_LIGHT,
        "uploading": theme.PRIMARY_LIGHT,
        "failed": theme.DANGER,
        "conflict": theme.WARNING,
        "done": theme.SUCCESS,
    }
    return list(colours.get(state, theme.MUTED))


def approval_status_text(status: str) -> str:
    return {
        "pending": _("waiting for a decision"),
        "approved": _("approved"),
        "returned": _("returned"),
    }.get(status, status)


def server_state_text(server_state: dict[str, Any] | None) -> str:
    if not server_state:
        return ""
    approval = server_state.get("approval")
    if isinstance(approval, dict):
        return _("On the server now: the approval is {status}.").format(
            status=approval_status_text(approval.get("status", ""))
        )
    case = server_state.get("case", server_state)
    if isinstance(case, dict) and "status" in case:
        status = label(forms.state_label(case.get("case_type", ""), case["status"]))
        return _("On the server now: {status} (version {version})").format(
            status=status or case["status"], version=case.get("version", "?")
        )
    return _("On the server now: {state}").format(
        state=json.dumps(server_state, ensure_ascii=False)[:200]
    )


class OutboxEntry(BoxLayout):
    item_id = StringProperty("")
    title = StringProperty("")
    item_state = StringProperty("")
    error = StringProperty("")
    detail = StringProperty("")
    progress = NumericProperty(0.0)
    attempts = NumericProperty(0)
    colour = ListProperty([0, 0, 0, 1])
    payload = DictProperty({})


class OutboxScreen(BaseScreen):
    def refresh(self) -> None:
        items = self.state.outbox_items()
        box = self.ids.entries
        box.clear_widgets()
        for item in items:
            box.add_widget(
                OutboxEntry(
                    item_id=item.id,
                    title=item.title,
                    item_state=item.state,
                    error=item.error or "",
                    detail=server_state_text(item.server_state)
                    if item.state in ("conflict", "failed")
                    else "",
                    progress=item.progress or 0.0,
                    attempts=item.attempts,
                    colour=state_colour(item.state),
                    payload=item.payload,
                )
            )
        self.ids.empty.shown = not items

    def retry(self, item_id: str) -> None:
        self.state.retry(item_id)
        self.refresh()

    def redo(self, entry: OutboxEntry) -> None:
        self.state.redo(entry.item_id, dict(entry.payload))
        self.refresh()

    def discard(self, item_id: str) -> None:
        self.state.discard(item_id)
        self.refresh()
