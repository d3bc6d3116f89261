"""Weekly bulletins and monthly assessments: numbers, comparisons, HTML, PDF (read back with
poppler's pdftotext), the periodic job, and who may see them."""

from __future__ import annotations

import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from backend.extensions import db
from backend.jobs.service import JOBS
from backend.org.models import Unit
from backend.stats import service
from backend.stats.models import Assessment, Bulletin

from conftest import Api
from support_stats import CITY_W47_TOTALS, StatsWorld, build_stats_world

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def sw(app) -> StatsWorld:
    with app.app_context():
        return build_stats_world("n" + uuid.uuid4().hex[:6])


@pytest.fixture(scope="module")
def city_bulletin(sw, client) -> dict:
    response = Api(client).post(
        "/api/v1/bulletins",
        sw.org.user("city.manager"),
        json={"unit_id": str(sw.org.unit("city").id), "week": "2026-W47"},
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


@pytest.fixture(scope="module")
def client(app):
    return app.test_client()


def pdf_text(data: bytes, tmp_path: Path) -> str:
    path = tmp_path / "report.pdf"
    path.write_bytes(data)
    return subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True
    ).stdout


def test_bulletin_numbers_and_comparisons(city_bulletin):
    data = city_bulletin["data"]
    assert data["week"] == "2026-W47" and data["last_year_week"] == "2025-W47"
    assert (data["first_day"], data["last_day"]) == ("2026-11-16", "2026-11-22")
    assert data["statistics"]["totals"] == CITY_W47_TOTALS
    assert data["previous"]["cases"]["registered"] == 1
    assert data["last_year"]["problems"]["found"] == 18
    compared = data["comparisons"]
    assert compared["cases_registered"] == {
        "current": 8,
        "previous": 1,
        "last_year": 4,
        "change_pct": 700.0,
        "yoy_pct": 100.0,
    }
    assert compared["problems_found"] == {
        "current": 4,
        "previous": 0,
        "last_year": 18,
        "change_pct": None,
        "yoy_pct": -77.8,
    }
    assert compared["warnings_sent"]["yoy_pct"] == 66.7  # 5 against 3
    assert compared["evidence_uploaded"]["yoy_pct"] is None
    assert (
        "受理案件8起，环比上升700.0%，同比上升100.0%；其中行政案件6起，刑事案件2起。"
        in (data["sentences"])
    )
    assert "巡查发现问题4个，上期为0，同比下降77.8%；已整改2个，整改率50.0%。" in data["sentences"]


def test_bulletin_records_who_generated_it(sw, city_bulletin):
    assert city_bulletin["generated_by"] == str(sw.org.user("city.manager").id)


def test_asking_again_returns_the_same_bulletin(api, sw, city_bulletin):
    manager = sw.org.user("city.manager")
    again = api.post(
        "/api/v1/bulletins",
        manager,
        json={"unit_id": str(sw.org.unit("city").id), "week": "2026-W47"},
    )
    assert again.status_code == 200
    assert again.get_json()["id"] == city_bulletin["id"]
    listed = api.get(f"/api/v1/units/{sw.org.unit('city').id}/bulletins", manager).get_json()
    assert [b["id"] for b in listed] == [city_bulletin["id"]]
    assert listed[0]["title"] == "测试市公安局执法监督工作周通报"


def test_bulletin_as_html(api, sw, city_bulletin):
    manager = sw.org.user("city.manager")
    path = f"/api/v1/bulletins/{city_bulletin['id']}"
    for response in (
        api.get(f"{path}?format=html", manager),
        api.get(path, manager, headers={"Accept": "text/html"}),
    ):
        assert response.status_code == 200
        assert response.mimetype == "text/html"
        page = response.get_data(as_text=True)
        assert "执法监督工作周通报" in page
        assert "同比下降77.8%" in page
        assert "受理案件8起" in page
        assert "<td>分局a</td>" in page and "<td>分局b</td>" in page
        assert page.count('src="data:image/png;base64,') == 2
    assert api.get(path, manager).mimetype == "application/json"


def test_bulletin_pdf_text(api, sw, city_bulletin, tmp_path):
    response = api.get(f"/api/v1/bulletins/{city_bulletin['id']}/pdf", sw.org.user("city.leader"))
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert response.data.startswith(b"%PDF")
    text = pdf_text(response.data, tmp_path)
    assert "执法监督工作周通报" in text
    assert "2026-W47期" in text
    assert "测试市公安局案件管理中心" in text
    assert "受理案件8起，环比上升700.0%，同比上升100.0%" in text
    assert "同比下降77.8%" in text
    assert "办结率37.5%" in text
    assert "分局a" in text and "分局b" in text


def test_bulletins_of_other_units_are_not_found(api, sw, city_bulletin):
    path = f"/api/v1/bulletins/{city_bulletin['id']}"
    for user in ("b.manager", "a1.legal", "a.leader"):
        for suffix in ("", "/pdf", "?format=html"):
            response = api.get(path + suffix, sw.org.user(user))
            assert response.status_code == 404, (user, suffix)
            assert response.headers["Content-Type"] == PROBLEM
    a_unit = str(sw.org.unit("a").id)
    foreign = api.post(
        "/api/v1/bulletins", sw.org.user("b.manager"), json={"unit_id": a_unit, "week": "2026-W47"}
    )
    assert foreign.status_code == 404
    assert api.get(f"/api/v1/units/{a_unit}/bulletins", sw.org.user("b1.leader")).status_code == 404


@pytest.mark.parametrize("user", ["a1.officer", "city.admin"])
def test_officers_and_admins_may_not_use_bulletins(api, sw, city_bulletin, user):
    path = f"/api/v1/bulletins/{city_bulletin['id']}"
    assert api.get(path, sw.org.user(user)).status_code == 403
    assert api.get(path + "/pdf", sw.org.user(user)).status_code == 403
    created = api.post(
        "/api/v1/bulletins",
        sw.org.user(user),
        json={"unit_id": str(sw.org.unit("a1").id), "week": "2026-W47"},
    )
    assert created.status_code == 403


def test_station_bulletin_on_demand(api, sw):
    leader = sw.org.user("a1.leader")
    response = api.post(
        "/api/v1/bulletins", leader, json={"unit_id": str(sw.org.unit("a1").id), "week": "2026-W47"}
    )
    assert response.status_code == 201
    data = response.get_json()["data"]
    assert response.get_json()["generated_by"] == str(leader.id)
    assert data["statistics"]["children"] == []
    assert data["statistics"]["totals"]["cases"]["registered"] == 3
    assert data["comparisons"]["problems_found"]["yoy_pct"] == round((3 - 18) / 18 * 100, 1)


@pytest.mark.parametrize(
    ("week", "status"), [("2026-W54", 422), ("2099-W01", 422), ("2026-47", 422), ("W47", 422)]
)
def test_bad_or_unfinished_weeks_are_refused(api, sw, week, status):
    response = api.post(
        "/api/v1/bulletins",
        sw.org.user("city.manager"),
        json={"unit_id": str(sw.org.unit("city").id), "week": week},
    )
    assert response.status_code == status
    assert response.headers["Content-Type"] == PROBLEM


def test_weekly_job_generates_the_last_full_week_once(app, sw):
    assert JOBS["stats.weekly_bulletins"].every.days == 7
    ours = [u.id for u in sw.org.units.values()]
    now = datetime(2026, 11, 18, 4, 0, tzinfo=UTC)  # Wednesday of W47: last full week is W46
    with app.app_context():
        first = service.weekly_bulletins(now)
        db.session.commit()
        second = service.weekly_bulletins(now)
        db.session.commit()
        rows = db.session.scalars(
            sa.select(Bulletin).where(Bulletin.week == "2026-W46", Bulletin.unit_id.in_(ours))
        ).all()
        assert first.startswith("2026-W46: ") and second.startswith("2026-W46: 0 bulletins")
        assert len(rows) == len(ours) == 6
        city = next(b for b in rows if b.unit_id == sw.org.unit("city").id)
        assert city.generated_by is None
        assert city.data["statistics"]["totals"]["cases"]["registered"] == 1  # c6
        assert city.data["statistics"]["totals"]["cases"]["overdue"] == 0  # c6 due 11-18


def test_monthly_assessment_scores(app, api, sw, tmp_path):
    with app.app_context():
        city = db.session.get(Unit, sw.org.unit("city").id)
        assessment, created = service.ensure_assessment(
            city, "2026-11", None, datetime(2026, 12, 2, tzinfo=UTC)
        )
        db.session.commit()
        assessment_id = assessment.id
    assert created
    manager = sw.org.user("city.manager")
    body = api.get(f"/api/v1/assessments/{assessment_id}", manager).get_json()
    rows = {row["unit"]["id"]: row for row in body["data"]["rows"]}
    a, b = rows[str(sw.org.unit("a").id)], rows[str(sw.org.unit("b").id)]
    assert a["rates"] == {
        "closure_rate": 0.2857,  # 2 of 7
        "warning_handling_rate": 0.6,  # 3 of 5
        "evidence_on_time_rate": 0.75,  # 3 of 4
        "online_handling_rate": 0.1429,  # 1 of 7
        "overdue_free_rate": 0.6,  # 2 of 5 open overdue
        "rectification_rate": 0.6667,  # 2 of 3
    }
    # 100 × (25×.2857 + 15×.6 + 15×.75 + 15×.1429 + 15×.6 + 15×.6667) / 100
    assert a["score"] == 48.54 and a["rank"] == 1
    # b1: 1 of 3 closed, no warning handled, evidence on time, 0 online, 1 of 2 overdue
    assert b["score"] == pytest.approx(100 * (25 * 0.3333 + 15 * 1.0 + 15 * 0.5) / 100, abs=0.01)
    assert b["rank"] == 2
    assert body["data"]["weights"]["closure_rate"] == 25
    html = api.get(f"/api/v1/assessments/{assessment_id}?format=html", manager)
    assert "执法质量月度考评通报" in html.get_data(as_text=True)
    assert "48.54" in html.get_data(as_text=True)
    pdf = api.get(f"/api/v1/assessments/{assessment_id}/pdf", manager)
    assert pdf.mimetype == "application/pdf"
    text = pdf_text(pdf.data, tmp_path)
    assert "执法质量月度考评通报" in text and "48.54" in text and "分局a" in text
    assert (
        api.get(f"/api/v1/assessments/{assessment_id}", sw.org.user("b.leader")).status_code == 404
    )
    assert (
        api.get(f"/api/v1/assessments/{assessment_id}", sw.org.user("a1.officer")).status_code
        == 403
    )


def test_assessment_on_demand_needs_a_finished_month(api, sw):
    manager = sw.org.user("city.manager")
    city = str(sw.org.unit("city").id)
    unfinished = api.post(
        "/api/v1/assessments", manager, json={"unit_id": city, "month": "2099-01"}
    )
    assert unfinished.status_code == 422
    done = api.post("/api/v1/assessments", manager, json={"unit_id": city, "month": "2026-10"})
    assert done.status_code == 201
    assert {row["score"] for row in done.get_json()["data"]["rows"]} == {None}
    again = api.post("/api/v1/assessments", manager, json={"unit_id": city, "month": "2026-10"})
    assert again.status_code == 200 and again.get_json()["id"] == done.get_json()["id"]
    foreign = api.post(
        "/api/v1/assessments", sw.org.user("b.manager"), json={"unit_id": city, "month": "2026-10"}
    )
    assert foreign.status_code == 404


def test_score_formula_leaves_out_indicators_without_data():
    weights = {"closure_rate": 30, "warning_handling_rate": 10}
    assert service.score({"closure_rate": 0.5, "warning_handling_rate": None}, weights) == 50.0
    assert service.score({"closure_rate": 1.0, "warning_handling_rate": 0.0}, weights) == 75.0
    assert service.score({"closure_rate": None, "warning_handling_rate": None}, weights) is None


def test_weights_are_read_from_the_data_file(tmp_path):
    path = tmp_path / "assessment.toml"
    path.write_text("[weights]\nclosure_rate = 2\nonline_handling_rate = 1\n", "utf-8")
    assert service.load_weights(path) == {"closure_rate": 2.0, "online_handling_rate": 1.0}
    path.write_text("[weights]\nspeed = 1\n", "utf-8")
    with pytest.raises(ValueError, match="weights"):
        service.load_weights(path)


def test_monthly_job_assesses_every_parent_unit_once(app, sw):
    assert "stats.monthly_assessments" in JOBS
    parents = [sw.org.unit(k).id for k in ("city", "a", "b")]
    now = datetime(2026, 10, 5, tzinfo=UTC)  # last full month: September
    with app.app_context():
        first = service.monthly_assessments(now)
        db.session.commit()
        second = service.monthly_assessments(now)
        db.session.commit()
        months = db.session.scalars(
            sa.select(Assessment.unit_id).where(
                Assessment.month == "2026-09",
                Assessment.unit_id.in_([u.id for u in sw.org.units.values()]),
            )
        ).all()
    assert first.startswith("2026-09: ") and second.startswith("2026-09: 0 assessments")
    assert sorted(months) == sorted(parents)
