"""Time as the law counts it (刑事诉讼法 art. 105).

Periods run in hours, days and months. The hour or day on which a period
starts is not counted. A period of days or months whose last day is a
non-working day (a public holiday or a rest day, 节假日) ends on the first
working day after it, except custody periods of a detained person, which end
on their last day regardless. Months are calendar months: the period ends on
the same day of the month, or on the month's last day when it has no such
day (Jan 31 + 1 month = Feb 28/29).

Working days come from ``chinese_calendar``, which knows China's public
holidays and the shifted working days (调休) announced each year. For a year
the calendar does not cover yet, Saturdays and Sundays are taken as the rest
days.
"""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

import chinese_calendar

DEFAULT_ZONE = ZoneInfo("Asia/Shanghai")


class Unit(StrEnum):
    HOURS = "hours"
    DAYS = "days"
    MONTHS = "months"


class Counting(StrEnum):
    PROCEDURAL = "procedural"
    """A period that ends on the next working day when its last day is a holiday."""
    CUSTODY = "custody"
    """A person's time in custody: ends on its last day, holiday or not."""


def is_working_day(day: date) -> bool:
    try:
        return chinese_calendar.is_workday(day)
    except NotImplementedError:  # a year the calendar does not cover yet: weekends rest
        return day.weekday() < 5


def next_working_day(day: date) -> date:
    while not is_working_day(day):
        day += timedelta(days=1)
    return day


def add_months(day: date, months: int) -> date:
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def last_day(start: date, amount: int, unit: Unit) -> date:
    """The last day of a period of days or months starting on ``start`` (not counted)."""
    if unit == Unit.DAYS:
        return start + timedelta(days=amount)
    if unit == Unit.MONTHS:
        return add_months(start, amount)
    raise ValueError(f"{unit} is not a unit of days")


def period_end(
    start: datetime,
    amount: int,
    unit: Unit,
    counting: Counting = Counting.PROCEDURAL,
    zone: ZoneInfo = DEFAULT_ZONE,
) -> datetime:
    """The instant (UTC) at which a period that starts at ``start`` has run out.

    Hours count from the next full hour. Days and months end at the close of
    their last day in the unit's time zone, moved to the end of the next
    working day for a procedural period whose last day is not a working day.
    """
    if start.tzinfo is None:
        raise ValueError("naive datetime")
    local = start.astimezone(zone)
    if unit == Unit.HOURS:
        first_counted = local.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        return (first_counted.astimezone(UTC) + timedelta(hours=amount)).astimezone(UTC)
    end_day = last_day(local.date(), amount, unit)
    if counting == Counting.PROCEDURAL:
        end_day = next_working_day(end_day)
    closing = datetime.combine(end_day + timedelta(days=1), time(), tzinfo=zone)
    return closing.astimezone(UTC)


def local_midnight(day: date, zone: ZoneInfo = DEFAULT_ZONE) -> datetime:
    """The start of ``day`` in the unit's zone, as a UTC instant."""
    return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)
