"""Value types the API's models share, strict where pydantic would guess.

:data:`Instant` accepts only an RFC 3339 date-time text with a time zone (a number
is not a time, and a time without a zone is ambiguous)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
)


def _instant_text(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("a date-time needs a time zone")
        return value
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise ValueError("an RFC 3339 date-time with a time zone, e.g. 2026-12-01T10:00:00Z")
    return value


Instant = Annotated[
    datetime,
    BeforeValidator(_instant_text),
    Field(json_schema_extra={"format": "date-time"}),
]
