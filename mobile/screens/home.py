"""Home: my open cases with their next deadline, shortcuts with badges, the sync state."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mobile.i18n import _, label
from mobile.screens.base import BaseScreen
from mobile.widgets import ListRow, theme


def deadline_text(due_at: str | None) -> str:
    if not due_at:
        return _("No deadline")
    due = datetime.fromisoformat(due_at).astimezone()
    return _("Due {when}").format(when=due.strftime("%Y-%m-%d %H:%M"))


def deadline_colour(due_at: str | None) -> list[float]:
    if not due_at:
        return list(theme.MUTED)
    remaining = datetime.fromisoformat(due_at) - datetime.now().astimezone()
    if remaining.total_seconds() < 0:
        return list(theme.DANGER)
    if remaining.days < 1:
        return list(theme.WARNING)
    return list(theme.SUCCESS)


class HomeScreen(BaseScreen):
    def refresh(self) -> None:
        cases = self.state.my_cases()
        box = self.ids.cases
        box.clear_widgets()
        for case in cases:
            row = ListRow(
                title=case.get("title") or case.get("number", ""),
                subtitle=" · ".join(
                    part
                    for part in (
                        case.get("number", ""),
                        label(case.get("status_label")) or case.get("status", ""),
                        deadline_text(case.get("due_at")),
                    )
                    if part
                ),
                badge=_("Overdue") if case.get("overdue") else "",
                badge_colour=deadline_colour(case.get("due_at")),
                key=case["id"],
            )
            row.bind(on_release=self._open_case)
            box.add_widget(row)
        self.ids.empty.shown = not cases
        self.ids.approvals_button.count = len(self.state.pending_approvals())
        self.ids.warnings_button.count = self.state.attention_count()
        self.ids.outbox_button.count = self.app.waiting + self.app.failed

    def _open_case(self, row: Any) -> None:
        self.app.show("case", case_id=row.key)
