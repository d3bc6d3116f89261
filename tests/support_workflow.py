"""Helpers for workflow tests: the signed documents a step requires.

``submit_decision`` (administrative cases) cannot be approved before the case
holds a signed notification record (``requires_signed`` in
``shared/workflows/administrative.toml``).
"""

from __future__ import annotations

from typing import Any

from conftest import Api, Org, OrgUser
from support_documents import signed_notification_record


def colleague(world: Org, officer: OrgUser) -> OrgUser:
    """Another officer of the officer's station: ``a1.officer`` and ``a1.officer2``."""
    station, _, name = officer.username.split(".", 1)[1].partition(".")
    return world.user(f"{station}.{'officer' if name == 'officer2' else 'officer2'}")


def sign_notification_record(
    api: Api, world: Org, officer: OrgUser, case_id: str
) -> dict[str, Any]:
    """A notification record about a new suspect of the case, signed by the officer,
    a colleague and the party; as read back."""
    document = signed_notification_record(api, officer, colleague(world, officer), case_id)
    assert document["status"] == "signed", document
    return document
