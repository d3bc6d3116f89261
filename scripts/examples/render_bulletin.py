#!/usr/bin/env python3
"""Render the example weekly bulletin kept under docs/examples/ (all units and figures are
fictional).

Run from the repository root::

    .venv/bin/python scripts/examples/render_bulletin.py

It builds a bulletin's data with the same functions the service uses (indicators, year-on-year
comparisons, sentences), renders it with ``backend.stats.render`` and writes
``docs/examples/bulletin-page1.png`` with ``pdftoppm -r 100`` (Debian: poppler-utils).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from backend.stats import render, service  # noqa: E402 (after the path set-up)

OUT = ROOT / "docs" / "examples"

STATIONS: tuple[tuple[str, dict[str, int]], ...] = (
    (
        "文三路派出所",
        {"registered": 38, "closed": 31, "open": 52, "overdue": 2, "warnings_sent": 41,
         "warnings_acknowledged": 37, "warnings_resolved": 30, "warnings_handled": 39,
         "evidence_uploaded": 126, "evidence_on_time": 119, "signatures_online": 74,
         "online_cases": 33, "problems_found": 9, "problems_rectified": 8},
    ),
    (
        "北山派出所",
        {"registered": 27, "closed": 19, "open": 40, "overdue": 4, "warnings_sent": 35,
         "warnings_acknowledged": 28, "warnings_resolved": 22, "warnings_handled": 30,
         "evidence_uploaded": 88, "evidence_on_time": 71, "signatures_online": 51,
         "online_cases": 21, "problems_found": 12, "problems_rectified": 9},
    ),
    (
        "灵隐派出所",
        {"registered": 19, "closed": 16, "open": 21, "overdue": 0, "warnings_sent": 14,
         "warnings_acknowledged": 14, "warnings_resolved": 12, "warnings_handled": 14,
         "evidence_uploaded": 61, "evidence_on_time": 60, "signatures_online": 40,
         "online_cases": 18, "problems_found": 3, "problems_rectified": 3},
    ),
    (
        "翠苑派出所",
        {"registered": 31, "closed": 22, "open": 47, "overdue": 3, "warnings_sent": 29,
         "warnings_acknowledged": 24, "warnings_resolved": 20, "warnings_handled": 26,
         "evidence_uploaded": 97, "evidence_on_time": 84, "signatures_online": 58,
         "online_cases": 25, "problems_found": 7, "problems_rectified": 5},
    ),
)  # fmt: skip


def counter(counts: dict[str, int], criminal_share: float = 0.3) -> dict[str, Any]:
    criminal = round(counts.get("registered", 0) * criminal_share)
    return {
        **dict.fromkeys(service.COUNTERS, 0),
        **counts,
        "by_type": {"administrative": counts.get("registered", 0) - criminal, "criminal": criminal},
        "by_state": {},
    }


def scaled(factor: float) -> dict[str, Any]:
    totals = {key: round(sum(c[key] for _, c in STATIONS) * factor) for key in service.COUNTERS}
    return service.indicators(counter(totals))


def bulletin_data() -> dict[str, Any]:
    children = [
        {"unit": {"id": "", "code": f"S{i}", "name": name, "tier": "station"},
         "indicators": service.indicators(counter(counts))}
        for i, (name, counts) in enumerate(STATIONS)
    ]  # fmt: skip
    totals = {key: sum(c[key] for _, c in STATIONS) for key in service.COUNTERS}
    current = service.indicators(counter(totals))
    previous, last_year = scaled(0.92), scaled(1.87)
    compared = service.comparisons(current, previous, last_year)
    return {
        "title": "西湖区分局执法监督工作周通报",
        "week": "2026-W47",
        "first_day": "2026-11-16",
        "last_day": "2026-11-22",
        "generated_at": "2026-11-23T01:00:00+00:00",
        "statistics": {
            "unit": {"id": "", "code": "XH", "name": "西湖区分局", "tier": "district"},
            "totals": current,
            "own": service.indicators(counter({})),
            "children": children,
        },
        "previous": previous,
        "last_year": last_year,
        "last_year_week": "2025-W47",
        "comparisons": compared,
        "sentences": service.sentences(current, compared),
    }


def main() -> None:
    font = render.cjk_font(None)
    pdf = render.render_pdf(render.bulletin_report(bulletin_data(), font), font)
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bulletin.pdf"
        path.write_bytes(pdf)
        subprocess.run(
            ["pdftoppm", "-r", "100", "-f", "1", "-l", "1", "-png", "-singlefile", str(path),
             str(OUT / "bulletin-page1")],
            check=True,
        )  # fmt: skip
    print(OUT / "bulletin-page1.png")


if __name__ == "__main__":
    main()
