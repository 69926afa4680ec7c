"""CSV files for spreadsheets: the one home of formula defusing and of the dialects
Unitgate writes (the access export and import, the purchase export, the sign-in
export).

A spreadsheet runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` (and, in some,
a tab or carriage return) as a formula: a name such as ``=HYPERLINK(...)`` typed into
a profile or a merchant registration would run on the administrator's machine when
they open the export (CSV injection). :func:`defuse` puts a ``'`` before such a cell,
which spreadsheets show as text; :func:`undefuse` takes it off again on import, so
a round trip gives back the original value.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence

BOM = "\ufeff"
# ``excel``: comma-separated; ``excel-de``: semicolons, for spreadsheets set to German.
DIALECTS = {"excel": ",", "excel-de": ";"}
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def defuse(value: object) -> str:
    """``value`` as a cell that a spreadsheet shows as text, never runs (None: "")."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def undefuse(value: str) -> str:
    """The inverse of :func:`defuse` on import."""
    if len(value) > 1 and value[0] == "'" and value[1:].startswith(FORMULA_START):
        return value[1:]
    return value


def csv_lines(rows: Iterable[Sequence[object]], delimiter: str = ",",
              bom: bool = False) -> Iterator[str]:
    """Each row as one CSV line (CRLF, every cell defused), lazily: a stream of any
    length in constant memory. ``bom``: the first line starts with a UTF-8 BOM."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    first = True
    for row in rows:
        writer.writerow([defuse(cell) for cell in row])
        line = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        yield (BOM + line) if bom and first else line
        first = False
