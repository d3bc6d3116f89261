"""The typed client's feed and early warnings against a real HTTP server on the test app:
poll the feed with its cursor, list the caller's open warnings, acknowledge one (twice)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from flask import Flask

from shared.client import CaseWarning, FeedItem, FieldcaseClient, NotFoundError

from conftest import PASSWORD, Api, Org, OrgUser
from support_server import serving

RULE = "seizure_two_officers"


@pytest.fixture(scope="module")
def base_url(app: Flask) -> Iterator[str]:
    with serving(app) as url:
        yield url


Connect = Callable[[OrgUser], FieldcaseClient]


@pytest.fixture
def connect(base_url: str) -> Iterator[Connect]:
    clients: list[FieldcaseClient] = []

    def make(user: OrgUser) -> FieldcaseClient:
        client = FieldcaseClient(base_url)
        clients.append(client)
        client.login(user.username, PASSWORD)
        return client

    yield make
    for client in clients:
        client.close()


def seize_with_one_officer(api: Api, officer: OrgUser, case_id: str) -> None:
    """Record a seizure by one officer: the rule ``seizure_two_officers`` fires."""
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


def drain(
    client: FieldcaseClient, since: str | None, limit: int = 500
) -> tuple[list[FeedItem], str | None]:
    """Every feed item after ``since``, page by page; the cursor after the last."""
    items: list[FeedItem] = []
    while True:
        page = client.feed(since=since, limit=limit)
        items += page["items"]
        since = page["next_cursor"]
        if not page["more"]:
            return items, since


def warnings_of(items: list[FeedItem], case_id: str) -> list[CaseWarning]:
    return [
        item["warning"]
        for item in items
        if item["type"] == "warning" and item["case_id"] == case_id and "warning" in item
    ]


def test_the_feed_brings_a_new_warning_once_and_then_its_acknowledgement(
    api: Api, world: Org, connect: Connect
) -> None:
    officer = world.user("a1.officer")
    client = connect(officer)
    _, cursor = drain(client, None)
    case_id = api.case(officer)["id"]

    seize_with_one_officer(api, officer, case_id)

    items, cursor = drain(client, cursor)
    fired = [w for w in warnings_of(items, case_id) if w["rule_id"] == RULE]
    assert len(fired) == 1
    warning = fired[0]
    assert warning["status"] == "open" and warning["handler_id"] == str(officer.id)
    assert warning["case_number"] and warning["case_number"] in warning["message"]["en"]
    assert warning["case_number"] in warning["message"]["zh"]
    assert cursor is not None
    assert warnings_of(drain(client, cursor)[0], case_id) == []

    acknowledged = client.acknowledge_warning(warning["id"])

    assert acknowledged["status"] == "acknowledged"
    assert acknowledged["acknowledged_by"] == str(officer.id)
    changed = warnings_of(drain(client, cursor)[0], case_id)
    assert [(w["id"], w["status"]) for w in changed] == [(warning["id"], "acknowledged")]


def test_a_small_page_says_there_is_more(api: Api, world: Org, connect: Connect) -> None:
    officer = world.user("a1.officer")
    client = connect(officer)
    _, cursor = drain(client, None)
    case_id = api.case(officer)["id"]
    seize_with_one_officer(api, officer, case_id)
    seize_with_one_officer(api, officer, case_id)

    first = client.feed(since=cursor, limit=1)
    assert len(first["items"]) == 1 and first["more"] is True
    rest, _ = drain(client, first["next_cursor"], limit=1)

    seen = warnings_of(first["items"] + rest, case_id)
    assert len([w for w in seen if w["rule_id"] == RULE]) == 2
    assert len({w["id"] for w in seen}) == len(seen)


def test_list_warnings_and_acknowledge_twice(api: Api, world: Org, connect: Connect) -> None:
    officer = world.user("a1.officer")
    client = connect(officer)
    case_id = api.case(officer)["id"]
    seize_with_one_officer(api, officer, case_id)

    page = client.list_warnings(mine=True, status="open", case_id=case_id)
    mine = [w for w in page["items"] if w["rule_id"] == RULE]
    assert len(mine) == 1 and mine[0]["case_id"] == case_id
    warning_id = mine[0]["id"]

    first = client.acknowledge_warning(warning_id)
    second = client.acknowledge_warning(warning_id)

    assert first["status"] == second["status"] == "acknowledged"
    assert first["acknowledged_at"] == second["acknowledged_at"]
    still_open = client.list_warnings(mine=True, status=["open"], case_id=case_id)["items"]
    assert warning_id not in [w["id"] for w in still_open]
    acknowledged = client.list_warnings(mine=True, status="acknowledged", case_id=case_id)
    assert [w["id"] for w in acknowledged["items"]] == [warning_id]


def test_another_units_warning_is_not_found(api: Api, world: Org, connect: Connect) -> None:
    officer = world.user("a1.officer")
    case_id = api.case(officer)["id"]
    seize_with_one_officer(api, officer, case_id)
    owner = connect(officer)
    (warning_id,) = [
        w["id"]
        for w in owner.list_warnings(mine=True, case_id=case_id)["items"]
        if w["rule_id"] == RULE
    ]
    stranger = connect(world.user("b1.officer"))

    with pytest.raises(NotFoundError):
        stranger.acknowledge_warning(warning_id)
    assert all(item["case_id"] != case_id for item in drain(stranger, None)[0])
    statuses = {w["id"]: w["status"] for w in owner.list_warnings(case_id=case_id)["items"]}
    assert statuses[warning_id] == "open"
