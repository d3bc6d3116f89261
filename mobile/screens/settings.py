"""Settings: language, server address, idle lock, sign out (wipes cached case data)."""

from __future__ import annotations

from kivy.properties import NumericProperty, StringProperty

from mobile.i18n import _
from mobile.screens.base import BaseScreen
from mobile.state import UnsentItems

IDLE_CHOICES = ("1", "5", "10", "30", "60")


class SettingsScreen(BaseScreen):
    message = StringProperty("")
    unsent = NumericProperty(0)

    def refresh(self) -> None:
        self.ids.server.text = self.state.server_url or ""
        self.ids.idle.text = str(self.app.idle_lock_minutes())
        self.message = ""
        self.unsent = 0

    def save_server(self) -> None:
        address = self.ids.server.text.strip()
        if not address.startswith(("http://", "https://")):
            self.ids.server.error = _(
                "The address starts with https:// (or http:// on a test network)."
            )
            return
        self.ids.server.error = ""
        self.state.set_server_url(address)
        self.message = _("Server address saved.")

    def set_idle(self, minutes: str) -> None:
        self.app.set_idle_lock_minutes(int(minutes))

    def sign_out(self) -> None:
        try:
            self.app.sign_out()
        except UnsentItems as error:
            self.unsent = error.count

    def sign_out_discarding(self) -> None:
        self.unsent = 0
        self.app.sign_out(discard_unsent=True)
