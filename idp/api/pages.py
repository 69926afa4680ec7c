"""Paging of list endpoints: an opaque cursor and a bounded page size.

A cursor is the sort key of the last item shown (keyset pagination), encoded as
URL-safe base64 of a JSON array. Clients must treat it as opaque; a cursor that
does not decode to what the list expects is a 400 ``invalid_cursor``. Since the
filters are applied again on every page, a forged cursor shows nothing the caller
could not list anyway. Pages never overlap and never skip an item that existed
throughout the walk.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field

from idp.api.problems import Problem

MAX_LIMIT = 200
DEFAULT_LIMIT = 50
MAX_CURSOR = 512

T = TypeVar("T")


class PageQuery(BaseModel):
    """The paging parameters every list takes."""

    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Items per page")
    cursor: str | None = Field(
        None, max_length=MAX_CURSOR, description="The next_cursor of the previous page"
    )


class Page(BaseModel, Generic[T]):
    """One page of a list."""

    items: list[T]
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null: last")
    total: int | None = Field(None, description="All items matching the filters, when cheap")


def encode(key: list[Any]) -> str:
    raw = json.dumps(key, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _storable(value: Any) -> bool:
    """A value a database column can hold and compare: text without NUL, a signed
    64-bit integer (anything else would fail in the query, a 500)."""
    if isinstance(value, str):
        return "\x00" not in value
    if isinstance(value, int):
        return -(2**63) <= value < 2**63
    return True


def decode(cursor: str | None, kinds: tuple[type, ...]) -> list[Any] | None:
    """The sort key in ``cursor`` (None for the first page), checked to be a list of
    values of ``kinds`` (``str``, ``int``; None is allowed for any)."""
    if cursor is None:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, UnicodeError, binascii.Error) as exc:
        raise Problem(400, "invalid_cursor", "The cursor is not one this list gave.") from exc
    ok = isinstance(key, list) and len(key) == len(kinds) and all(
        value is None or (type(value) is kind and _storable(value))
        for value, kind in zip(key, kinds, strict=True)
    )
    if not ok:
        raise Problem(400, "invalid_cursor", "The cursor is not one this list gave.")
    return key
