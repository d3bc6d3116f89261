"""Sign in: server address, user name and password. The device key is enrolled on the
first sign-in; the password is never stored."""

from __future__ import annotations

from typing import Any

from kivy.properties import BooleanProperty, StringProperty

from mobile.i18n import _
from mobile.screens.base import BaseScreen


class SignInScreen(BaseScreen):
    busy = BooleanProperty(False)
    message = StringProperty("")
    locked = BooleanProperty(False)

    def open(self, locked: bool = False, **_arguments: Any) -> None:
        self.locked = locked
        self.message = ""
        self.ids.password.text = ""

    def refresh(self) -> None:
        if not self.ids.server.text:
            self.ids.server.text = self.state.server_url or ""
        if not self.ids.username.text and self.state.username:
            self.ids.username.text = self.state.username

    def submit(self) -> None:
        server = self.ids.server.text.strip()
        username = self.ids.username.text.strip()
        password = self.ids.password.text
        if not (server and username and password):
            self.message = _("Enter the server address, your user name and your password.")
            return
        self.busy = True
        self.message = _("Signing in…")
        self.state.sign_in(server, username, password)

    def signed_in(self) -> None:
        self.busy = False
        self.message = ""
        self.locked = False
        self.ids.password.text = ""

    def failed(self, detail: dict[str, Any] | None) -> None:
        self.busy = False
        reason = (detail or {}).get("reason")
        if reason == "credentials":
            self.message = _("Wrong user name or password.")
        elif reason == "offline":
            self.message = _("The server could not be reached. Check the address and the network.")
        else:
            problem = (detail or {}).get("problem") or {}
            self.message = _("Sign-in failed: {reason}").format(
                reason=problem.get("detail")
                or problem.get("title")
                or (detail or {}).get("message", "")
            )
