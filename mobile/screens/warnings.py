"""Warnings and returned steps: open the case from an item, acknowledge a warning
(queued like any step) or mark a returned step as seen."""

from __future__ import annotations

from datetime import datetime

from kivy.properties import BooleanProperty, ListProperty, StringProperty
from kivy.uix.boxlayout import BoxLayout

from mobile.i18n import _
from mobile.screens.base import BaseScreen
from mobile.widgets import theme

SEVERITY_COLOUR = {"high": theme.DANGER, "medium": theme.WARNING}


class AttentionEntry(BoxLayout):
    """A warning or a returned step: the row opens its case, the button acknowledges it."""

    key = StringProperty("")
    kind = StringProperty("")
    case_id = StringProperty("")
    title = StringProperty("")
    subtitle = StringProperty("")
    badge = StringProperty("")
    badge_colour = ListProperty([0, 0, 0, 0])
    button_text = StringProperty("")
    done = BooleanProperty(False)


def due_text(due_at: str | None) -> str:
    if not due_at:
        return ""
    due = datetime.fromisoformat(due_at).astimezone()
    return _("Due {when}").format(when=due.strftime("%Y-%m-%d %H:%M"))


class WarningsScreen(BaseScreen):
    def refresh(self) -> None:
        warnings = self.state.warnings()
        box = self.ids.warnings
        box.clear_widgets()
        for warning in warnings:
            box.add_widget(
                AttentionEntry(
                    key=warning["id"],
                    kind="warning",
                    case_id=warning["case_id"],
                    title=warning.get("case_number") or "",
                    subtitle=" · ".join(
                        part for part in (warning["text"], due_text(warning.get("due_at"))) if part
                    ),
                    badge=_("Acknowledged") if warning["acknowledged"] else _("Warning"),
                    badge_colour=list(
                        theme.MUTED
                        if warning["acknowledged"]
                        else SEVERITY_COLOUR.get(warning.get("severity", ""), theme.PRIMARY)
                    ),
                    button_text=_("Acknowledge"),
                    done=warning["acknowledged"],
                )
            )
        self.ids.no_warnings.shown = not warnings
        returned = self.state.returned_steps()
        box = self.ids.entries
        box.clear_widgets()
        for item in returned:
            box.add_widget(
                AttentionEntry(
                    key=item["key"],
                    kind="returned",
                    case_id=item["case_id"],
                    title=item.get("title", ""),
                    subtitle=_("Returned: {comment}").format(comment=item.get("comment") or "—"),
                    badge=_("Returned"),
                    badge_colour=list(theme.DANGER),
                    button_text=_("Mark as seen"),
                )
            )
        self.ids.empty.shown = not returned

    def open_case(self, entry: AttentionEntry) -> None:
        self.app.show("case", case_id=entry.case_id)

    def acknowledge(self, entry: AttentionEntry) -> None:
        if entry.kind == "warning":
            self.state.acknowledge_warning(entry.key)
            self.app.notify(_("Acknowledged. It is sent as soon as the server is reachable."))
        else:
            self.state.acknowledge(entry.key)
        self.refresh()
