"""CSV export and import of a unit's accesses (issue 13, items 3 and 4): the API
side of :mod:`idp.accounts.access_csv`. The export takes every filter of the
access list (:class:`idp.api.accesses.ListFilter`, the same predicate) and answers
a streamed ``text/csv``; the import takes a ``text/csv`` body and answers a JSON
report."""

from __future__ import annotations

from typing import Any, Literal

from flask import Response, stream_with_context
from pydantic import BaseModel, ConfigDict, Field

from idp.accounts import access_admin, access_csv
from idp.api import bp
from idp.api.accesses import ListFilter, _filter
from idp.api.endpoint import Call, endpoint
from idp.api.problems import Problem
from idp.services import settings

CSV_MEDIA = "text/csv"


class AccessExportQuery(ListFilter):
    """The list's filters and the export's options."""

    model_config = ConfigDict(extra="forbid")

    include_sub_units: bool = False
    include_inactive: bool = Field(
        False, description="Suspended accesses too (default: invited and active ones)")
    only_details_sent: bool = Field(
        False, description="Only accesses whose details (invitation, welcome) were sent")
    password_status: bool = Field(False, description="Add the password status column")
    columns: str | None = Field(
        None, max_length=1000,
        description="Comma-separated column names, in this order (default: the default "
        "columns); see docs/admin-api.md",
    )
    dialect: Literal["excel", "excel-de"] = Field(
        "excel", description="excel: commas; excel-de: semicolons (German spreadsheets)")


class ImportQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dry_run: bool = Field(False, description="Check every row, write nothing")
    invite: bool = Field(True, description="false: create new people without sending "
                         "their invitation (a later run or a resend sends it)")


class ImportItem(BaseModel):
    row: int = Field(description="The row number (the header is row 1)")
    email: str
    outcome: Literal["created", "invited", "unchanged", "error"]
    column: str | None
    code: str | None
    message: str | None


class ImportOut(BaseModel):
    """Counts per outcome; ``items``: every row that is an error or carries a code
    (at most 1000; ``omitted`` counts the rest). ``committed_rows``: the rows up to
    this row number are committed (a dry run: checked)."""

    dry_run: bool
    rows: int
    counts: dict[str, int]
    committed_rows: int
    items: list[ImportItem]
    omitted: int


def _refused(exc: access_csv.CsvRefused) -> Problem:
    if exc.code == "too_large":
        return Problem(413, exc.code, str(exc))
    return Problem(422, exc.code, str(exc))


@endpoint(
    bp, "GET", "/units/{unit_id}/accesses/export", summary="Export a unit's accesses as CSV",
    tag="accesses", query=AccessExportQuery, response=str, permission="exports.read",
    response_media=CSV_MEDIA,
)
def export_unit_accesses(call: Call, unit_id: str) -> Response:
    """The unit's accesses (with `include_sub_units`, its sub-units' too) as CSV,
    with every filter of the list, ordered by access id (a stable order that keeps
    an export of any size linear; sort in the spreadsheet). UTF-8 with a byte
    order mark; `dialect=excel-de` separates with semicolons. Cells a spreadsheet
    would read as a formula start with `'`. Streamed (constant memory for any
    number of rows) and audited (`accesses.exported`)."""
    query: AccessExportQuery = call.query
    try:
        chosen = access_csv.columns(
            query.columns.split(",") if query.columns is not None else None,
            query.password_status,
        )
    except access_csv.CsvRefused as exc:
        raise Problem(422, exc.code, str(exc), errors=[
            {"pointer": "/query/columns", "detail": str(exc)}]) from exc
    bounds = access_admin.scope(call.actor, "exports.read", unit_id, query.include_sub_units)
    f = access_csv.export_filter(_filter(query, bounds), query.include_inactive,
                                 query.only_details_sent)
    filters: dict[str, Any] = query.model_dump(mode="json", exclude_defaults=True)
    chunks = access_csv.export(call.actor, unit_id, f, chosen, query.dialect, filters=filters)
    resp = Response(stream_with_context(chunks), mimetype=CSV_MEDIA)
    resp.headers["Content-Disposition"] = 'attachment; filename="accesses.csv"'
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp


@endpoint(
    bp, "POST", "/units/{unit_id}/accesses/import", summary="Import accesses from CSV",
    tag="accesses", query=ImportQuery, response=ImportOut, permission="users.manage",
    body_media=CSV_MEDIA, body_limit=lambda: settings().csv_import_max_bytes,
)
def import_unit_accesses(call: Call, unit_id: str) -> ImportOut:
    """Add people from a CSV with the export's columns (`email` required; read-only
    columns such as `status` are ignored), comma or semicolon separated, UTF-8 with
    or without a byte order mark. Idempotent by e-mail address: new people are
    created and invited (within the unit's hourly invitation budget; beyond it
    their invitation is deferred to a later run), existing accesses are left as
    they are. `dry_run=true` checks every row and writes nothing. Commits in
    batches of 500 rows; see docs/admin-api.md for the guarantees."""
    query: ImportQuery = call.query
    try:
        report = access_csv.run_import(
            call.actor, unit_id, call.body, dry_run=query.dry_run, invite=query.invite,
            limit=settings().csv_import_max_bytes,
        )
    except access_csv.CsvRefused as exc:
        raise _refused(exc) from exc
    return ImportOut.model_validate(report.as_dict())
