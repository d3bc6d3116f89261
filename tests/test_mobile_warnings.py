"""Early warnings on the field client against a real Fieldcase server: the sync worker
caches the officer's warnings from the feed, an acknowledgement goes through the
outbox, and a warning resolved meanwhile needs none."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from backend.extensions import db
from backend.supervision.models import CaseWarning
from shared.enums import WarningStatus

from conftest import Api, Org, OrgUser
from support_mobile import Phone
from support_server import serving

RULE = "seizure_two_officers"


@pytest.fixture(scope="module")
def base_url(app: Flask) -> Iterator[str]:
    with serving(app) as url:
        yield url


@pytest.fixture
def phone(tmp_path: Path, base_url: str) -> Iterator[Phone]:
    device = Phone(tmp_path / "phone", base_url)
    device.worker.start()
    yield device
    device.close()


def fire_warning(api: Api, officer: OrgUser) -> str:
    """A new case of ``officer`` with a seizure by one officer: its case id."""
    case_id = api.case(officer)["id"]
    response = api.post(
        f"/api/v1/cases/{case_id}/facts",
        officer,
        json={
            "kind": "property_seized",
            "subject": f"item-{uuid.uuid4().hex[:8]}",
            "started_at": datetime.now(UTC).isoformat(),
            "data": {"officers": 1},
        },
    )
    assert response.status_code == 201, response.get_json()
    return case_id


def cached_warning(phone: Phone, case_id: str) -> Callable[[], dict[str, Any] | None]:
    def find() -> dict[str, Any] | None:
        return next(
            (w for w in phone.state.warnings() if w["case_id"] == case_id and w["rule_id"] == RULE),
            None,
        )

    return find


def server_status(app: Flask, warning_id: str) -> WarningStatus:
    with app.app_context():
        warning = db.session.get(CaseWarning, uuid.UUID(warning_id))
        assert warning is not None
        return warning.status


def test_a_warning_arrives_through_the_feed_and_is_acknowledged_through_the_outbox(
    app: Flask, api: Api, world: Org, phone: Phone
) -> None:
    officer = world.user("a1.officer")
    assert phone.sign_in(officer).kind == "signed_in"
    phone.wait_for(lambda: phone.event("cache"))
    before = phone.state.attention_count()
    cursor = phone.store.feed_cursor(str(officer.id))

    case_id = fire_warning(api, officer)
    phone.worker.refresh_now()
    warning = phone.wait_for(cached_warning(phone, case_id))

    assert phone.store.feed_cursor(str(officer.id)) not in (None, cursor)
    assert warning["status"] == "open" and not warning["acknowledged"]
    assert warning["case_number"] and warning["text"] == warning["message"]["zh"]
    phone.state.set_language("en")
    assert cached_warning(phone, case_id)()["text"] == warning["message"]["en"]  # type: ignore[index]
    fresh = len([w for w in phone.state.warnings() if w["case_id"] == case_id])
    assert phone.state.attention_count() == before + fresh
    newest = [w["created_at"] for w in phone.state.warnings()]
    assert newest == sorted(newest, reverse=True)

    item = phone.state.acknowledge_warning(warning["id"])
    assert phone.state.acknowledge_warning(warning["id"]).id == item.id
    shown = cached_warning(phone, case_id)()
    assert shown is not None and shown["acknowledged"] and shown["status"] == "open"
    assert phone.state.attention_count() == before + fresh - 1

    items = phone.wait_settled()
    assert [(i.kind, i.state) for i in items if i.id == item.id] == [("acknowledgement", "done")]
    assert server_status(app, warning["id"]) == WarningStatus.ACKNOWLEDGED
    phone.wait_for(lambda: (cached_warning(phone, case_id)() or {}).get("status") == "acknowledged")
    assert phone.state.attention_count() == before + fresh - 1

    phone.restart()
    kept = cached_warning(phone, case_id)()
    assert kept is not None and kept["acknowledged"]


def test_acknowledging_a_warning_resolved_meanwhile_is_harmless(
    app: Flask, api: Api, world: Org, phone: Phone
) -> None:
    officer = world.user("a1.officer")
    assert phone.sign_in(officer).kind == "signed_in"
    case_id = fire_warning(api, officer)
    phone.worker.refresh_now()
    warning = phone.wait_for(cached_warning(phone, case_id))
    response = api.post(
        f"/api/v1/warnings/{warning['id']}/resolve", officer, json={"note": "两人在场，已补录"}
    )
    assert response.status_code == 200, response.get_json()

    item = phone.state.acknowledge_warning(warning["id"])
    phone.wait_settled()

    done = phone.outbox.get(item.id)
    assert done is not None and done.state == "done", done
    assert server_status(app, warning["id"]) == WarningStatus.RESOLVED
    phone.wait_for(lambda: cached_warning(phone, case_id)() is None)


def test_a_phone_shared_by_two_officers_shows_each_their_own_warnings(
    api: Api, world: Org, phone: Phone
) -> None:
    first, second = world.user("a1.officer2"), world.user("a1.officer")
    case_id = fire_warning(api, first)
    assert phone.sign_in(first).kind == "signed_in"
    phone.wait_for(cached_warning(phone, case_id))

    refreshed = len([e for e in phone.events if e.kind == "cache"])
    assert phone.sign_in(second).kind == "signed_in"
    phone.wait_for(lambda: len([e for e in phone.events if e.kind == "cache"]) > refreshed)

    shown = phone.state.warnings()
    assert [w for w in shown if w["case_id"] == case_id] == []
    assert {w["handler_id"] for w in shown} <= {str(second.id)}
