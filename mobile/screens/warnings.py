"""Warnings and returned steps: open the case from an item. Supervision warnings
arrive with a later release; until then the list shows returned steps only."""

from __future__ import annotations

from typing import Any

from mobile.i18n import _
from mobile.screens.base import BaseScreen
from mobile.widgets import ListRow, theme


class WarningsScreen(BaseScreen):
    def refresh(self) -> None:
        returned = self.state.returned_steps()
        box = self.ids.entries
        box.clear_widgets()
        for item in returned:
            row = ListRow(
                title=item.get("title", ""),
                subtitle=_("Returned: {comment}").format(comment=item.get("comment") or "—"),
                badge=_("Returned"),
                badge_colour=list(theme.DANGER),
                key=item["case_id"],
            )
            row.bind(on_release=self._open_case)
            box.add_widget(row)
        self.ids.empty.shown = not returned

    def _open_case(self, row: Any) -> None:
        self.app.show("case", case_id=row.key)
