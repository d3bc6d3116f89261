"""The client's screens, one ``<name>.py`` + ``<name>.kv`` pair each."""

from __future__ import annotations

from mobile.screens.approvals import ApprovalsScreen
from mobile.screens.base import BaseScreen, load_kv
from mobile.screens.case import CaseScreen
from mobile.screens.evidence import EvidenceScreen
from mobile.screens.home import HomeScreen
from mobile.screens.outbox import OutboxScreen
from mobile.screens.report import ReportScreen
from mobile.screens.settings import SettingsScreen
from mobile.screens.signin import SignInScreen
from mobile.screens.transcript import TranscriptScreen
from mobile.screens.warnings import WarningsScreen

SCREENS: dict[str, type[BaseScreen]] = {
    "signin": SignInScreen,
    "home": HomeScreen,
    "report": ReportScreen,
    "case": CaseScreen,
    "evidence": EvidenceScreen,
    "transcript": TranscriptScreen,
    "approvals": ApprovalsScreen,
    "warnings": WarningsScreen,
    "outbox": OutboxScreen,
    "settings": SettingsScreen,
}


def load_kv_files() -> None:
    """Load each screen's ``.kv`` file; after the widgets' rules, before making screens."""
    for screen_class in SCREENS.values():
        load_kv(screen_class)
