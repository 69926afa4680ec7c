"""Calendar budget periods (month, quarter, year) in a unit's IANA time zone.

A period starts at local midnight of its first day and ends at local midnight of the
next period's first day, so a month in ``Europe/Berlin`` spans a DST change with 23
or 25 hours on one day and ends at 22:00 or 23:00 UTC. Instants are UTC-aware.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

PERIODS = ("month", "quarter", "year")


class TimeZoneError(ValueError):
    """Not an IANA time zone name."""


@lru_cache(maxsize=1)
def _known() -> frozenset[str]:
    return (frozenset(available_timezones()) | {"UTC"}) - {"localtime", "posixrules"}


def zone(name: object) -> ZoneInfo:
    """The IANA zone ``name`` (``Europe/Berlin``, ``UTC``): one of the system's
    IANA names (not ``localtime`` or ``posixrules``), else :class:`TimeZoneError`."""
    if not isinstance(name, str) or name not in _known():
        raise TimeZoneError(f"not an IANA time zone: {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise TimeZoneError(f"not an IANA time zone: {name!r}") from exc


@dataclass(frozen=True)
class Period:
    """One budget period: its first local day (the usage key) and its UTC bounds."""

    first_day: date
    starts_at: datetime
    ends_at: datetime

    @property
    def key(self) -> str:
        return self.first_day.isoformat()


def _first_day(kind: str, day: date) -> date:
    if kind == "month":
        return day.replace(day=1)
    if kind == "quarter":
        return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    if kind == "year":
        return date(day.year, 1, 1)
    raise ValueError(f"unknown period {kind!r}")


def _next_first_day(kind: str, first: date) -> date:
    months = {"month": 1, "quarter": 3, "year": 12}[kind]
    index = first.year * 12 + first.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(ZoneInfo("UTC"))


def period_at(kind: str, instant: datetime, tz_name: str) -> Period:
    """The ``kind`` period containing ``instant`` (aware) in the zone ``tz_name``."""
    tz = zone(tz_name)
    local_day = instant.astimezone(tz).date()
    first = _first_day(kind, local_day)
    nxt = _next_first_day(kind, first)
    return Period(first, _local_midnight(first, tz), _local_midnight(nxt, tz))
