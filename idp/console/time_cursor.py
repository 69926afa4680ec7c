"""The cursor of the console's lists that run newest first by creation time and id
(webhook deliveries, purchases): ``<ISO instant>~<id>`` of the last row shown. A
forged cursor only moves the page: the list is filtered and authorised again."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, TypeVar

MAX_CURSOR = 120
MAX_ID = 40


class Row(Protocol):
    @property
    def created_at(self) -> datetime: ...

    @property
    def id(self) -> str: ...


R = TypeVar("R", bound=Row)


def encode(row: Row) -> str:
    """The cursor after ``row``."""
    return f"{row.created_at.isoformat()}~{row.id}"


def decode(text: str | None) -> tuple[datetime, str] | None:
    """``(created_at, id)`` of a cursor; None for none or a malformed one."""
    if not text or len(text) > MAX_CURSOR or "~" not in text:
        return None
    moment, _sep, ident = text.partition("~")
    try:
        return datetime.fromisoformat(moment), ident[:MAX_ID]
    except ValueError:
        return None


def page_of(rows: list[R], size: int) -> tuple[list[R], str | None]:
    """The first ``size`` of ``rows`` (read with one more, to know whether more
    follow) and the cursor of the next page (None on the last)."""
    shown = rows[:size]
    return shown, encode(shown[-1]) if len(rows) > size and shown else None
