"""Periods counted as CPL art. 105 counts them, on China's holiday calendar."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from backend.supervision.legaltime import Counting, Unit, add_months, is_working_day, period_end

from support_supervision import local

pytestmark = pytest.mark.one_backend  # no database involved


def test_days_start_the_next_day_and_end_at_the_close_of_the_last():
    assert period_end(local("2026-03-02 23:50"), 3, Unit.DAYS) == local("2026-03-06 00:00")


def test_a_period_ending_in_the_national_day_week_runs_to_the_next_working_day():
    # Last day Oct 1 2026; Oct 1-7 are holidays, Oct 8 is a working day.
    assert period_end(local("2026-09-28 10:00"), 3, Unit.DAYS) == local("2026-10-09 00:00")


def test_custody_never_extends_over_a_holiday():
    end = period_end(local("2026-09-28 10:00"), 3, Unit.DAYS, Counting.CUSTODY)
    assert end == local("2026-10-02 00:00")


def test_a_weekend_last_day_moves_to_monday():
    assert period_end(local("2026-03-02 10:00"), 5, Unit.DAYS) == local("2026-03-10 00:00")


def test_a_shifted_working_day_is_not_extended():
    # Sunday 2025-09-28 was a working day (调休) before the 2025 National Day holiday.
    assert is_working_day(date(2025, 9, 28))
    assert period_end(local("2025-09-25 10:00"), 3, Unit.DAYS) == local("2025-09-29 00:00")


def test_a_shifted_saturday_after_the_holiday_ends_the_period():
    # Oct 1-8 2025 are holidays, Saturday Oct 11 2025 is a working day.
    assert not is_working_day(date(2025, 10, 8))
    assert is_working_day(date(2025, 10, 11))
    assert period_end(local("2025-10-01 10:00"), 9, Unit.DAYS) == local("2025-10-11 00:00")
    assert period_end(local("2025-10-01 10:00"), 10, Unit.DAYS) == local("2025-10-12 00:00")


@pytest.mark.parametrize(
    ("start", "months", "end"),
    [
        (date(2026, 1, 31), 1, date(2026, 2, 28)),
        (date(2024, 1, 31), 1, date(2024, 2, 29)),
        (date(2025, 12, 31), 2, date(2026, 2, 28)),
        (date(2026, 3, 15), 12, date(2027, 3, 15)),
        (date(2026, 8, 31), 1, date(2026, 9, 30)),
    ],
)
def test_months_are_calendar_months(start, months, end):
    assert add_months(start, months) == end


def test_jan_31_plus_one_month_in_custody_ends_with_feb_28():
    end = period_end(local("2026-01-31 09:00"), 1, Unit.MONTHS, Counting.CUSTODY)
    assert end == local("2026-03-01 00:00")


def test_a_month_ending_on_a_holiday_extends_unless_custody():
    # Sep 5 2026 + 1 month = Oct 5, inside the National Day week.
    assert period_end(local("2026-09-05 10:00"), 1, Unit.MONTHS) == local("2026-10-09 00:00")
    custody = period_end(local("2026-09-05 10:00"), 1, Unit.MONTHS, Counting.CUSTODY)
    assert custody == local("2026-10-06 00:00")


def test_hours_count_from_the_next_full_hour_and_ignore_holidays():
    assert period_end(local("2026-10-01 10:20"), 24, Unit.HOURS) == local("2026-10-02 11:00")
    assert period_end(local("2026-03-02 10:00"), 12, Unit.HOURS) == local("2026-03-02 23:00")


def test_local_time_zone_decides_the_day():
    # 17:30 UTC on Mar 2 is already Mar 3 in Shanghai.
    start = datetime(2026, 3, 2, 17, 30, tzinfo=UTC)
    assert period_end(start, 1, Unit.DAYS) == local("2026-03-05 00:00")


def test_naive_times_are_refused():
    with pytest.raises(ValueError, match="naive"):
        period_end(datetime(2026, 3, 2, 10), 1, Unit.DAYS)
