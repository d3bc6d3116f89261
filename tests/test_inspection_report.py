"""The problem report, checked against a hand-computed fixture.

A fresh organisation (city; district a with stations a1, a2; district b with b1)
gets these problems, times in Asia/Shanghai; the period is May 2026, and "now"
is 2026-06-15 12:00:

| #  | station | category            | filed            | deadline    | outcome              |
|----|---------|---------------------|------------------|-------------|----------------------|
| P1 | a1      | irregular_record    | 05-03 10:00      | 05-10       | closed 05-08         |
| P2 | a1      | irregular_record    | 05-04 10:00      | 05-06       | closed 05-09 (late)  |
| P3 | a1      | incomplete_evidence | 05-05 10:00      | 05-20       | open (overdue)       |
| P4 | a2      | document_defect     | 05-31 23:30      | 06-30       | open                 |
| P5 | a2      | document_defect     | 06-01 00:30      | 06-30       | outside the period   |
| P6 | b1      | wrong_law           | 05-10 10:00      | 05-12       | submitted (overdue)  |
| P7 | a1      | other               | 04-30 23:59      | 05-30       | outside the period   |
| P8 | a2 (警情)| late_acceptance     | 05-15 10:00      | 05-25       | closed 05-20         |

found / rectified / overdue: a1 3/2/2, a2 2/1/0, b1 1/0/1, a 5/3/2, b 1/0/1, city 6/3/3.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import pytest
from flask import Flask

from backend.cases import service as cases
from backend.extensions import db
from backend.inspection import service
from backend.org.models import User

from conftest import Api, Org, build_org
from support_supervision import local, new_case

NOW = "2026-06-15 12:00"


def user(org: Org, key: str) -> User:
    return db.session.get_one(User, org.user(key).id)


def problem(
    org: Org,
    station: str,
    category: str,
    filed: str,
    deadline: str,
    *,
    closed: str | None = None,
    submitted: bool = False,
    incident: bool = False,
) -> None:
    legal, officer = user(org, f"{station}.legal"), user(org, f"{station}.officer")
    target: dict[str, Any] = {"case_id": None, "incident_id": None}
    if incident:
        made, _ = cases.create_incident(
            officer,
            {
                "id": None,
                "occurred_at": local("2026-05-15 08:00"),
                "place": "解放路2号",
                "source": "dispatch",
                "category": "治安",
                "summary": "报警未及时受案",
                "latitude": None,
                "longitude": None,
            },
        )
        target["incident_id"] = made.id
    else:
        target["case_id"] = new_case(officer.id).id
    found = service.file_problem(
        legal,
        {
            **target,
            "category": category,
            "description": "巡查发现",
            "responsible_id": officer.id,
            "deadline": local(deadline),
        },
        now=local(filed),
    )
    if closed or submitted:
        service.submit_rectification(
            officer, found, {"note": "已整改", "evidence_ids": [], "document_ids": []}
        )
    if closed:
        service.review_rectification(legal, found, True, "", now=local(closed))


@pytest.fixture(scope="module")
def org(app: Flask) -> Org:
    with app.app_context():
        made = build_org("r" + uuid.uuid4().hex[:6])
        problem(
            made,
            "a1",
            "irregular_record",
            "2026-05-03 10:00",
            "2026-05-10 18:00",
            closed="2026-05-08 09:00",
        )
        problem(
            made,
            "a1",
            "irregular_record",
            "2026-05-04 10:00",
            "2026-05-06 18:00",
            closed="2026-05-09 09:00",
        )
        problem(made, "a1", "incomplete_evidence", "2026-05-05 10:00", "2026-05-20 18:00")
        problem(made, "a2", "document_defect", "2026-05-31 23:30", "2026-06-30 18:00")
        problem(made, "a2", "document_defect", "2026-06-01 00:30", "2026-06-30 18:00")
        problem(made, "b1", "wrong_law", "2026-05-10 10:00", "2026-05-12 18:00", submitted=True)
        problem(made, "a1", "other", "2026-04-30 23:59", "2026-05-30 18:00")
        problem(
            made,
            "a2",
            "late_acceptance",
            "2026-05-15 10:00",
            "2026-05-25 18:00",
            closed="2026-05-20 09:00",
            incident=True,
        )
        db.session.commit()
        return made


def counts(found: int, rectified: int, overdue: int) -> dict[str, int]:
    return {"found": found, "rectified": rectified, "overdue": overdue}


def by_unit(org: Org, report: dict[str, Any]) -> dict[str, dict[str, int]]:
    names = {str(unit.id): key for key, unit in org.units.items()}
    return {
        names[str(row["unit_id"])]: {k: row[k] for k in ("found", "rectified", "overdue")}
        for row in report["units"]
    }


def by_category(report: dict[str, Any]) -> dict[str, dict[str, int]]:
    return {
        row["code"]: {k: row[k] for k in ("found", "rectified", "overdue")}
        for row in report["categories"]
    }


def test_the_report_rolls_up_through_the_tiers(app: Flask, org: Org):
    with app.test_request_context():
        report = service.report(
            user(org, "city.manager"),
            None,
            datetime(2026, 5, 1).date(),
            datetime(2026, 5, 31).date(),
            now=local(NOW),
        )
    assert report["totals"] == counts(6, 3, 3)
    assert by_unit(org, report) == {
        "city": counts(6, 3, 3),
        "a": counts(5, 3, 2),
        "a1": counts(3, 2, 2),
        "a2": counts(2, 1, 0),
        "b": counts(1, 0, 1),
        "b1": counts(1, 0, 1),
    }
    assert by_category(report) == {
        "late_acceptance": counts(1, 1, 0),
        "irregular_record": counts(2, 2, 1),
        "incomplete_evidence": counts(1, 0, 1),
        "overdue": counts(0, 0, 0),
        "wrong_law": counts(1, 0, 1),
        "document_defect": counts(1, 0, 0),
        "other": counts(0, 0, 0),
    }
    assert report["categories"][0]["code"] == "late_acceptance"


def test_the_report_over_http(api: Api, org: Org):
    """Today (after 06-30) P4 is overdue too; district a's report covers a, a1, a2."""
    manager = org.user("a.manager")
    response = api.get("/api/v1/problems/report?from=2026-05-01&to=2026-05-31", manager)
    assert response.status_code == 200, response.get_json()
    report = response.get_json()
    assert report["unit_id"] == str(org.unit("a").id)
    assert (report["from"], report["to"]) == ("2026-05-01", "2026-05-31")
    assert report["totals"] == counts(5, 3, 3)
    assert by_unit(org, report) == {
        "a": counts(5, 3, 3),
        "a1": counts(3, 2, 2),
        "a2": counts(2, 1, 1),
    }
    assert by_category(report)["document_defect"] == counts(1, 0, 1)
    assert by_category(report)["wrong_law"] == counts(0, 0, 0)

    a2 = api.get(
        f"/api/v1/problems/report?unit_id={org.unit('a2').id}&from=2026-05-31&to=2026-06-01",
        org.user("city.legal"),
    ).get_json()
    assert a2["totals"] == counts(2, 0, 2)  # P4 and P5
    june = api.get("/api/v1/problems/report?from=2026-06-01&to=2026-06-30", manager).get_json()
    assert june["totals"] == counts(1, 0, 1)


def test_report_errors_and_access(api: Api, org: Org, world: Org):
    manager = org.user("a.manager")
    path = "/api/v1/problems/report"
    assert api.get(f"{path}?from=2026-05-31&to=2026-05-01", manager).status_code == 422
    assert api.get(f"{path}?from=2026-05-01", manager).status_code == 422
    everything = api.get(f"{path}?from=0001-01-01&to=9999-12-31", manager)
    assert everything.status_code == 200
    assert everything.get_json()["totals"]["found"] == 7  # all but P6, in B
    assert api.get(f"{path}?from=2026-05-01&to=2026-05-31&x=1", manager).status_code == 422
    foreign = f"{path}?unit_id={org.unit('b').id}&from=2026-05-01&to=2026-05-31"
    assert api.get(foreign, manager).status_code == 404
    other_org = f"{path}?unit_id={world.unit('a1').id}&from=2026-05-01&to=2026-05-31"
    assert api.get(other_org, org.user("city.manager")).status_code == 404
    for role in ("a1.officer", "a1.admin"):
        assert api.get(f"{path}?from=2026-05-01&to=2026-05-31", org.user(role)).status_code == 403
    for role in ("a1.legal", "a1.leader", "a1.manager"):
        response = api.get(f"{path}?from=2026-05-01&to=2026-05-31", org.user(role))
        assert response.status_code == 200, role
        assert response.get_json()["totals"]["found"] == 3
