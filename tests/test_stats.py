"""Three-tier statistics: roll-ups checked against a hand-computed fixture."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest

from backend.extensions import db
from backend.org.models import Unit
from backend.stats import service

from support_stats import CITY_W47_TOTALS, StatsWorld, build_stats_world

PROBLEM = "application/problem+json"
W47 = "from=2026-11-16&to=2026-11-22"


@pytest.fixture(scope="module")
def sw(app) -> StatsWorld:
    with app.app_context():
        return build_stats_world("s" + uuid.uuid4().hex[:6])


def stats(api, sw: StatsWorld, user: str, unit: str, period: str = W47):
    unit_id = sw.org.unit(unit).id
    return api.get(f"/api/v1/stats?unit_id={unit_id}&{period}", sw.org.user(user))


def by_unit(body: dict) -> dict[str, dict]:
    return {child["unit"]["code"][-2:].lower(): child["indicators"] for child in body["children"]}


def test_city_totals_match_the_hand_computed_figures(api, sw):
    response = stats(api, sw, "city.manager", "city")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["totals"] == CITY_W47_TOTALS
    assert body["from"] == "2026-11-15T16:00:00+00:00"
    assert body["to"] == "2026-11-22T16:00:00+00:00"
    assert body["evidence_on_time_hours"] == 24


def test_city_breakdown_rolls_stations_up_into_their_districts(api, sw):
    body = stats(api, sw, "city.leader", "city").get_json()
    children = {c["unit"]["code"]: c["indicators"] for c in body["children"]}
    a = children[sw.org.unit("a").code]
    b = children[sw.org.unit("b").code]
    assert a["cases"] | {"by_state": None} == {
        "registered": 6,
        "closed": 2,
        "closure_rate": round(2 / 6, 4),
        "by_type": {"administrative": 4, "criminal": 2},
        "by_state": None,
        "open": 5,
        "overdue": 2,
    }
    assert a["warnings"] == {
        "sent": 4,
        "acknowledged": 2,
        "resolved": 2,
        "handled": 3,
        "handling_rate": 0.75,
    }
    assert a["evidence"] == {"uploaded": 3, "on_time": 2, "on_time_rate": 0.6667}
    assert a["problems"] == {"found": 3, "rectified": 2, "rectification_rate": 0.6667}
    assert a["signatures"] == {"online": 3}
    assert a["online_handling"] == {"cases": 1, "rate": round(1 / 6, 4)}
    assert b["cases"]["registered"] == 2 and b["cases"]["closed"] == 1
    assert b["cases"]["open"] == 1 and b["cases"]["overdue"] == 0
    assert b["warnings"]["sent"] == 1 and b["warnings"]["handling_rate"] == 0.0
    assert b["evidence"] == {"uploaded": 1, "on_time": 1, "on_time_rate": 1.0}
    assert b["problems"] == {"found": 1, "rectified": 0, "rectification_rate": 0.0}
    assert b["online_handling"] == {"cases": 0, "rate": 0.0}
    assert body["own"]["cases"]["registered"] == 0


def test_district_breakdown_has_its_stations_and_its_own_cases(api, sw):
    body = stats(api, sw, "a.legal", "a").get_json()
    children = {c["unit"]["code"]: c["indicators"] for c in body["children"]}
    a1 = children[sw.org.unit("a1").code]
    a2 = children[sw.org.unit("a2").code]
    assert (a1["cases"]["registered"], a1["cases"]["closed"], a1["cases"]["overdue"]) == (3, 1, 1)
    assert (a2["cases"]["registered"], a2["cases"]["closed"], a2["cases"]["overdue"]) == (2, 1, 1)
    assert a2["cases"]["open"] == 2  # c5, and c6 from the week before
    assert body["own"]["cases"]["registered"] == 1
    assert body["totals"]["cases"]["registered"] == 6
    assert body["totals"]["cases"]["by_type"] == {"administrative": 4, "criminal": 2}


def test_week_boundaries_follow_local_days(api, sw):
    before = stats(api, sw, "city.manager", "city", "from=2026-11-09&to=2026-11-15").get_json()
    assert before["totals"]["cases"]["registered"] == 1  # c6, Sunday 23:59 local
    assert before["totals"]["warnings"]["sent"] == 1
    assert before["totals"]["evidence"]["uploaded"] == 1
    after = stats(api, sw, "city.manager", "city", "from=2026-11-23&to=2026-11-23").get_json()
    assert after["totals"]["cases"]["registered"] == 1  # Monday 00:00 local of W48


def test_station_users_see_their_station_and_nothing_above_or_beside(api, sw):
    station = stats(api, sw, "a1.manager", "a1").get_json()
    assert station["children"] == []
    assert station["totals"]["cases"]["registered"] == 3
    assert station["totals"]["warnings"]["sent"] == 4
    for user, unit in (("a1.manager", "a"), ("a1.legal", "city"), ("b1.leader", "a1")):
        response = stats(api, sw, user, unit)
        assert response.status_code == 404, (user, unit)
        assert response.headers["Content-Type"] == PROBLEM


def test_default_unit_is_the_callers(api, sw):
    body = api.get(f"/api/v1/stats?{W47}", sw.org.user("b.manager")).get_json()
    assert body["unit"]["id"] == str(sw.org.unit("b").id)
    assert body["totals"]["cases"]["registered"] == 2


@pytest.mark.parametrize("user", ["a1.officer", "a1.admin", "city.admin"])
def test_officers_and_admins_may_not_read_statistics(api, sw, user):
    response = stats(api, sw, user, "a1")
    assert response.status_code == 403
    assert response.headers["Content-Type"] == PROBLEM


def test_bad_periods_are_refused(api, sw):
    assert (
        stats(api, sw, "city.manager", "city", "from=2026-11-22&to=2026-11-16").status_code == 422
    )
    assert stats(api, sw, "city.manager", "city", "from=2026-13-01").status_code == 422


def test_on_time_window_is_configurable(app, sw):
    with app.app_context():
        city = db.session.get(Unit, sw.org.unit("city").id)
        start, end = service.bounds(date(2026, 11, 16), date(2026, 11, 23))
        now = datetime(2026, 11, 26, tzinfo=UTC)
        assert service.statistics(city, start, end, now)["totals"]["evidence"]["on_time"] == 3
        app.config["STATS_EVIDENCE_ON_TIME_HOURS"] = 30
        try:
            totals = service.statistics(city, start, end, now)["totals"]
        finally:
            app.config["STATS_EVIDENCE_ON_TIME_HOURS"] = 24
        assert totals["evidence"] == {"uploaded": 4, "on_time": 4, "on_time_rate": 1.0}
        app.config["STATS_EVIDENCE_ON_TIME_HOURS"] = 23
        try:
            totals = service.statistics(city, start, end, now)["totals"]
        finally:
            app.config["STATS_EVIDENCE_ON_TIME_HOURS"] = 24
        assert totals["evidence"]["on_time"] == 2


def test_overdue_counts_only_deadlines_passed_by_now(app, sw):
    with app.app_context():
        city = db.session.get(Unit, sw.org.unit("city").id)
        start, end = service.bounds(date(2026, 11, 16), date(2026, 11, 23))
        early = datetime(2026, 11, 19, tzinfo=UTC)  # c6 is past due (11-18), c1 not yet (11-20)
        assert service.statistics(city, start, end, early)["totals"]["cases"]["overdue"] == 1


@pytest.mark.parametrize(
    ("current", "base", "pct", "phrase"),
    [
        (796, 3553, -77.6, "同比下降77.6%"),
        (8, 4, 100.0, "同比上升100.0%"),
        (5, 5, 0.0, "同比持平"),
        (3, 0, None, "上年同期为0"),
        (0, 0, None, "同比持平"),
        (1, 8, -87.5, "同比下降87.5%"),
    ],
)
def test_percent_change_and_its_phrase(current, base, pct, phrase):
    assert service.percent_change(current, base) == pct
    assert service.change_phrase("同比", current, base) == phrase


def test_period_defaults_to_the_seven_days_up_to_to(api, sw):
    body = api.get("/api/v1/stats?to=2026-11-22", sw.org.user("city.manager")).get_json()
    assert body["from"] == "2026-11-15T16:00:00+00:00"
    assert body["unit"]["id"] == str(sw.org.unit("city").id)
    assert body["totals"]["cases"]["registered"] == 8
    future = api.get("/api/v1/stats?from=2099-01-01", sw.org.user("city.manager"))
    assert future.status_code == 422
    assert future.headers["Content-Type"] == PROBLEM
