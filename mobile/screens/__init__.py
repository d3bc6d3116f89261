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
from mobile.screens.witness import WitnessScreen
from mobile.screens.witness_choice import WitnessChoiceScreen
from mobile.screens.witness_code import WitnessCodeScreen
from mobile.screens.witness_confidence import WitnessConfidenceScreen
from mobile.screens.witness_instructions import WitnessInstructionsScreen
from mobile.screens.witness_lineup import WitnessLineupScreen
from mobile.screens.witness_record import WitnessRecordScreen
from mobile.screens.witness_wait import WitnessWaitScreen

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
    "witness_code": WitnessCodeScreen,
    "witness_wait": WitnessWaitScreen,
    "witness_instructions": WitnessInstructionsScreen,
    "witness_lineup": WitnessLineupScreen,
    "witness_choice": WitnessChoiceScreen,
    "witness_confidence": WitnessConfidenceScreen,
    "witness_record": WitnessRecordScreen,
}


def load_kv_files() -> None:
    """Load each screen's ``.kv`` file; after the widgets' rules, before making screens."""
    for screen_class in (WitnessScreen, *SCREENS.values()):
        load_kv(screen_class)
