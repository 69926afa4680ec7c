"""CSV export and import of a unit's accesses (issue 13, items 3 and 4).

**One column registry** (:data:`COLUMNS`): the export's columns, their order, which
are shown by default and which the import reads (``writable``). Everything else
(the API's ``columns`` parameter, the CLI's ``--columns``, the import's header
check, the documentation's table) follows it, the password status (issue 13,
item 1) included.

**Export** (:func:`export`): a generator of encoded CSV chunks that walks keyset
pages of the list's query (:func:`idp.store.access_lists_repo.export_page`: the very
filter of the list API, :class:`idp.store.access_lists_repo.Filter`, ordered by
access id so that each page is an index range) :data:`PAGE` rows at a time, so
memory stays constant and time linear whatever the number of rows. UTF-8 with a byte order mark;
``excel`` separates with commas, ``excel-de`` with semicolons (spreadsheets set to
German). Formula injection is defused (OWASP): a cell starting with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return gets a leading ``'``. By default only
invited and active accesses are exported; ``include_inactive`` adds the suspended
ones (an explicit ``status`` filter wins). The export is audited
(``accesses.exported``: the filters, the columns, the row count, and whether the
stream ran to its end) when the stream ends.

**Import** (:func:`run_import`): the same columns; a row is one person, keyed by
e-mail address. Per row:

* a new address: the account and an ``invited`` access (platform access) or an
  ``active`` one (without), and an invitation when the unit's send budget
  (``IDP_INVITATIONS_PER_UNIT_HOUR``) allows (outcome ``created``); once the
  budget is spent, or with ``invite`` false, the access is created without one
  (code ``invitation_deferred``); a later run sends it (outcome ``invited``);
* an address with an account the importer may see (an access in a unit they
  manage, :func:`idp.accounts.access_admin.link`'s rule): an ``active`` access
  (``created``, code ``linked``); an address with an account they may not see:
  ``error`` ``person_exists`` (as adding a new contact answers);
* an address that already has an access to the unit: left as it is (``unchanged``;
  code ``differs`` with the columns when the file says otherwise). An import never
  changes or removes an existing access: it cannot take a role away from the last
  main user, and a second run of the same file changes nothing and invites nobody
  twice (an invitation goes out only while ``details_sent_at`` is empty).

The rows are read as a stream and handled in batches of :data:`BATCH`, each batch
one transaction (with its audit events and outbox messages); a batch that fails as
a whole (a concurrent change) is run again row by row. A failure therefore loses at
most the current batch, the report's ``committed_rows`` says which rows are in, and
because the import is idempotent the way to resume is to run the same file again.
Memory: the current batch, plus an 8-byte digest of each address seen (to report a
duplicate address in the file), about 6 MB per 100,000 rows.

A dry run reads and checks every row the same way (lookups included) and writes
nothing.

The import undoes the export's defusing: one leading ``'`` before ``=``, ``+``,
``-``, ``@``, a tab or a carriage return is dropped, so a round trip gives the
original values back.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any

from idp import audit
from idp.accounts import access_admin, invites
from idp.accounts.access_admin import Refused
from idp.accounts.lifecycle import InvalidEmail, normalise_email
from idp.provisioning import ownership
from idp.rights import Actor, require
from idp.rights.authorization import audit_actor
from idp.store import access_lists_repo, accesses_repo
from idp.store.access_lists_repo import Filter
from idp.store.models import AccessStatus
from idp.store.unit_of_work import Conflict, atomic
from idp.units import registry as units
from idp.web.spreadsheet import DIALECTS, csv_lines, undefuse

PAGE = 500
BATCH = 500
MAX_REPORTED = 1000
ACTIVE_STATUSES = frozenset({AccessStatus.INVITED.value, AccessStatus.ACTIVE.value})
TRUE_WORDS = frozenset({"yes", "true", "1", "ja", "y", "x"})
FALSE_WORDS = frozenset({"no", "false", "0", "nein", "n"})
NONE_WORD = "none"
PASSWORD_STATUS = "password_status"


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def _notifications(item: dict[str, Any]) -> str:
    """Empty: the defaults of the roles; ``none``: no notification at all."""
    if item["notifications_default"]:
        return ""
    return _text(item["notifications"]) or NONE_WORD


@dataclass(frozen=True)
class Column:
    """One CSV column: its ``name`` (the header), how a described access
    (:func:`idp.accounts.access_admin.describe`, plus ``mobile``) becomes its
    text, whether the export shows it without ``columns``, whether the import
    reads it."""

    name: str
    get: Callable[[dict[str, Any]], str]
    default: bool = True
    writable: bool = False
    description: str = ""


def _field(name: str) -> Callable[[dict[str, Any]], str]:
    return lambda item: _text(item.get(name))


COLUMNS: tuple[Column, ...] = (
    Column("email", _field("email"), writable=True, description="The address (the key)"),
    Column("given_name", _field("given_name"), writable=True),
    Column("family_name", _field("family_name"), writable=True),
    Column("mobile", _field("mobile"), writable=True,
           description="E.164 (+ and digits); an invitation then has an SMS code"),
    Column("roles", _field("roles"), writable=True,
           description="Built-in roles, comma-separated"),
    Column("permission_groups", _field("permission_groups"), writable=True,
           description="The unit's permission groups, comma-separated"),
    Column("platform_access", _field("platform_access"), writable=True,
           description="yes or no"),
    Column("notifications", _notifications, writable=True,
           description="Events, comma-separated; empty: the roles' defaults; none: none"),
    Column("status", _field("status"), description="invited, active, suspended"),
    Column("unit_name", _field("unit_name"), default=False),
    Column("unit_id", _field("unit_id"), default=False),
    Column("id", _field("id"), default=False, description="The access id"),
    Column("account_id", _field("account_id"), default=False),
    Column("created_at", _field("created_at")),
    Column("ends_at", _field("ends_at"), default=False),
    Column("last_signin_at", _field("last_signin_at")),
    Column("details_sent_at", _field("details_sent_at"),
           description="When the invitation or welcome mail went out"),
    Column(PASSWORD_STATUS, _field(PASSWORD_STATUS), default=False,
           description="initial, reset_by_staff, set_by_user or empty; never the password"),
)
BY_NAME = {c.name: c for c in COLUMNS}
WRITABLE = tuple(c.name for c in COLUMNS if c.writable)


class CsvRefused(ValueError):
    """The request as a whole is refused (``code``: ``unknown_column``,
    ``no_email_column``, ``invalid_dialect``, ``not_available``, ``invalid_csv``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        # for a file that breaks after some batches: what was done before
        self.report: ImportReport | None = None


def columns(names: Iterable[str] | None, password_status: bool = False) -> list[Column]:
    """The chosen columns in the order given (None: the defaults, in the registry's
    order), with the password status when asked for; :class:`CsvRefused`
    ``unknown_column`` for a name not in :data:`COLUMNS`."""
    if names is None:
        chosen = [c for c in COLUMNS if c.default]
    else:
        chosen = []
        for name in names:
            column = BY_NAME.get(name.strip())
            if column is None:
                raise CsvRefused(
                    "unknown_column",
                    f"{name.strip()!r} is not a column; one of " + ", ".join(BY_NAME),
                )
            if column not in chosen:
                chosen.append(column)
        if not chosen:
            raise CsvRefused("unknown_column", "Choose at least one column.")
    if password_status:
        column = BY_NAME.get(PASSWORD_STATUS)
        if column is None:
            raise CsvRefused("not_available", "The password status is not available.")
        if column not in chosen:
            chosen.append(column)
    return chosen


# -- export ------------------------------------------------------------------------


def export_filter(f: Filter, include_inactive: bool, only_details_sent: bool) -> Filter:
    """The list filter ``f`` with the export's options (see the module)."""
    statuses = None if include_inactive or f.status else ACTIVE_STATUSES
    return Filter(
        unit_ids=f.unit_ids, status=f.status, role=f.role, group=f.group, domain=f.domain,
        q=f.q, signed_in_before=f.signed_in_before, signed_in_after=f.signed_in_after,
        never_signed_in=f.never_signed_in, ids=f.ids, statuses=statuses,
        details_sent=only_details_sent or f.details_sent,
    )


def _described(row: Any) -> dict[str, Any]:
    item = access_admin.describe(row)
    item["mobile"] = getattr(row, "phone_number", None)
    return item


def export(
    actor: Actor, unit_id: str, f: Filter, chosen: list[Column], dialect: str,
    who: audit.Actor | None = None, filters: dict[str, Any] | None = None,
) -> Iterator[bytes]:
    """The CSV (UTF-8 with a byte order mark) of the accesses matching ``f`` (the
    caller bounded it to units it may export), one chunk per page of
    :data:`PAGE` rows; audited when the stream ends (see the module).
    :class:`idp.rights.NotPermitted` without ``exports.read`` in ``unit_id`` (raised
    before the first chunk)."""
    require(actor, "exports.read", unit_id)
    if dialect not in DIALECTS:
        raise CsvRefused("invalid_dialect", "The dialect is excel or excel-de.")
    who = who or audit_actor(actor)
    return _stream(unit_id, f, chosen, dialect, who, filters or {})


def _stream(unit_id: str, f: Filter, chosen: list[Column], dialect: str,
            who: audit.Actor, filters: dict[str, Any]) -> Iterator[bytes]:
    delimiter = DIALECTS[dialect]
    yield "".join(csv_lines([[c.name for c in chosen]], delimiter, bom=True)).encode()
    rows = 0
    complete = False
    try:
        after: str | None = None
        while True:
            page = access_lists_repo.export_page(f, after, PAGE)
            cells = ([c.get(item) for c in chosen] for item in map(_described, page))
            chunk = "".join(csv_lines(cells, delimiter))
            rows += len(page)
            if page:
                yield chunk.encode()
            if len(page) < PAGE:
                break
            after = page[-1].id
        complete = True
    finally:
        with atomic():
            audit.record(who, "accesses.exported", None, {
                "unit_id": unit_id, "filters": filters, "columns": [c.name for c in chosen],
                "dialect": dialect, "rows": rows, "complete": complete,
            }, unit_id=unit_id)


# -- import: reading ---------------------------------------------------------------


class _Counting(io.RawIOBase):
    """A binary stream counting the bytes read (the CLI's progress bar) and
    refusing more than ``limit`` bytes (the API's bound)."""

    def __init__(self, raw: IO[bytes], limit: int | None,
                 progress: Callable[[int], None] | None) -> None:
        self.raw = raw
        self.limit = limit
        self.progress = progress
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        data = self.raw.read(len(target))
        n = len(data)
        target[:n] = data
        self.read_bytes += n
        if self.limit is not None and self.read_bytes > self.limit:
            raise CsvRefused("too_large", f"The file is larger than {self.limit} bytes.")
        if self.progress is not None and n:
            self.progress(n)
        return n


def _reader(source: IO[bytes], limit: int | None,
            progress: Callable[[int], None] | None) -> tuple[list[str], Iterator[list[str]]]:
    """The header (names lower-case, stripped) and the rows of the CSV in
    ``source``: UTF-8 with or without a byte order mark, the separator (comma or
    semicolon) taken from the header line."""
    counted = io.BufferedReader(_Counting(source, limit, progress), 65536)
    text = io.TextIOWrapper(counted, encoding="utf-8-sig", newline="", errors="strict")
    try:
        first = text.readline()
    except UnicodeDecodeError as exc:
        raise CsvRefused("invalid_csv", "The file is not UTF-8 text.") from exc
    delimiter = ";" if first.count(";") > first.count(",") else ","
    header_cells = next(csv.reader([first], delimiter=delimiter), [])
    header = [h.strip().lower() for h in header_cells]
    if not any(header):
        raise CsvRefused("invalid_csv", "The file has no header line.")

    def rows() -> Iterator[list[str]]:
        try:
            yield from csv.reader(text, delimiter=delimiter)
        except UnicodeDecodeError as exc:
            raise CsvRefused("invalid_csv", "The file is not UTF-8 text.") from exc
        except csv.Error as exc:
            raise CsvRefused("invalid_csv", f"The file is not valid CSV: {exc}") from exc

    return header, rows()


def _check_header(header: list[str]) -> list[str | None]:
    """For each position, the writable column it feeds (None: read-only, ignored)."""
    out: list[str | None] = []
    for name in header:
        if name not in BY_NAME:
            raise CsvRefused(
                "unknown_column", f"{name!r} is not a column; one of " + ", ".join(BY_NAME)
            )
        if name in out:
            raise CsvRefused("invalid_csv", f"The column {name!r} appears twice.")
        out.append(name if BY_NAME[name].writable else None)
    if "email" not in out:
        raise CsvRefused("no_email_column", "The file needs an email column.")
    return out


# -- import: rows ------------------------------------------------------------------


@dataclass
class RowError:
    column: str | None
    code: str
    message: str


@dataclass
class ParsedRow:
    """One row as read and checked; ``errors`` empty when it can be imported."""

    number: int  # the line's row number, the header being row 1
    email: str = ""
    given_name: str = ""
    family_name: str = ""
    mobile: str | None = None
    roles: list[str] = field(default_factory=list)
    events: list[str] | None = None
    platform_access: bool = True
    present: frozenset[str] = frozenset()
    errors: list[RowError] = field(default_factory=list)


@dataclass
class RowResult:
    """What the import did (or, in a dry run, would do) with one row."""

    row: int
    email: str
    outcome: str  # created, invited, unchanged, error (dry run: the same, not written)
    column: str | None = None
    code: str | None = None
    message: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "email": self.email, "outcome": self.outcome,
                "column": self.column, "code": self.code, "message": self.message}


@dataclass
class ImportReport:
    """Counts per outcome, the rows worth a look (every one not ``created`` nor
    ``unchanged``, plus those with a code; at most :data:`MAX_REPORTED`),
    ``committed_rows``: the rows up to this row number are committed."""

    dry_run: bool
    counts: dict[str, int] = field(default_factory=lambda: {
        "created": 0, "invited": 0, "unchanged": 0, "error": 0})
    items: list[RowResult] = field(default_factory=list)
    omitted: int = 0
    rows: int = 0
    committed_rows: int = 1
    # rows per error code (the audit event's: a run of person_exists is someone
    # probing which addresses have accounts)
    errors: dict[str, int] = field(default_factory=dict)

    def add(self, result: RowResult) -> None:
        self.counts[result.outcome] = self.counts.get(result.outcome, 0) + 1
        if result.outcome == "error" and result.code:
            self.errors[result.code] = self.errors.get(result.code, 0) + 1
        if result.outcome == "created" and result.code is None:
            return
        if result.outcome == "unchanged" and result.code is None:
            return
        if len(self.items) < MAX_REPORTED:
            self.items.append(result)
        else:
            self.omitted += 1

    def as_dict(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "rows": self.rows, "counts": self.counts,
                "committed_rows": self.committed_rows,
                "items": [i.as_dict() for i in self.items], "omitted": self.omitted}


def _names(cell: str) -> list[str]:
    return [part.strip() for part in cell.split(",") if part.strip()]


class _Checker:
    """Checks rows against the unit (its roles, groups, the grants), caching what
    repeats (the same roles on thousands of rows)."""

    def __init__(self, actor: Actor, unit_id: str) -> None:
        self.actor = actor
        self.unit_id = unit_id
        self.settings: dict[tuple[Any, ...], tuple[list[str], list[str] | None] | Refused] = {}

    def settings_of(self, roles: list[str], groups: list[str],
                    events: list[str] | None) -> tuple[list[str], list[str] | None]:
        key = (tuple(roles), tuple(groups), None if events is None else tuple(events))
        if key not in self.settings:
            try:
                self.settings[key] = access_admin.checked_settings(
                    self.actor, self.unit_id, roles, groups, events)
            except Refused as exc:
                self.settings[key] = exc
        found = self.settings[key]
        if isinstance(found, Refused):
            raise found
        return found


_COLUMN_OF = {"roles": "roles", "permission_groups": "permission_groups",
              "notifications": "notifications"}


def _parse(number: int, cells: list[str], positions: list[str | None],
           checker: _Checker) -> ParsedRow:
    parsed = ParsedRow(number)
    values: dict[str, str] = {}
    for index, name in enumerate(positions):
        if name is not None:
            values[name] = undefuse(cells[index].strip()) if index < len(cells) else ""
    parsed.present = frozenset(values)
    if len(cells) > len(positions) and any(c.strip() for c in cells[len(positions):]):
        parsed.errors.append(RowError(None, "too_many_cells", "The row has more cells "
                                      "than the header."))
    if any("\x00" in v for v in values.values()):
        parsed.errors.append(RowError(None, "invalid_value", "A NUL character."))
        return parsed
    raw_email = values.get("email", "")
    parsed.email = raw_email.strip().lower()
    try:
        parsed.email = normalise_email(raw_email)
    except InvalidEmail:
        parsed.errors.append(RowError("email", "invalid_email",
                                      "The e-mail address is not valid."))
    parsed.given_name = values.get("given_name", "")
    parsed.family_name = values.get("family_name", "")
    try:
        parsed.mobile = invites.normalise_mobile(values.get("mobile"))
    except invites.ContactRefused as exc:
        parsed.errors.append(RowError("mobile", exc.code, exc.detail))
    access_word = values.get("platform_access", "").lower()
    if access_word in TRUE_WORDS or access_word == "":
        parsed.platform_access = True
    elif access_word in FALSE_WORDS:
        parsed.platform_access = False
    else:
        parsed.errors.append(RowError("platform_access", "invalid_value",
                                      "platform_access is yes or no."))
    events_cell = values.get("notifications", "")
    events = None if not events_cell else [] if events_cell.lower() == NONE_WORD \
        else _names(events_cell)
    try:
        parsed.roles, parsed.events = checker.settings_of(
            _names(values.get("roles", "")), _names(values.get("permission_groups", "")),
            events)
    except Refused as exc:
        parsed.errors.append(RowError(_COLUMN_OF.get(exc.field or "", exc.field),
                                      exc.code, str(exc)))
    return parsed


def _name_errors(parsed: ParsedRow) -> list[RowError]:
    """What a new person needs besides the checks of every row (the rules of
    :func:`idp.accounts.invites.add_contact`)."""
    out = []
    for name in ("given_name", "family_name"):
        value = getattr(parsed, name).strip()
        if not value:
            out.append(RowError(name, "required", f"The {name} is required for a new person."))
        elif len(value) > 200 or any(ord(c) < 32 or c == "\x7f" for c in value):
            out.append(RowError(name, "invalid_value", f"The {name} is not a usable name."))
    return out


def _differs(parsed: ParsedRow, found: Any) -> list[str]:
    out = []
    if "roles" in parsed.present or "permission_groups" in parsed.present:
        base, groups = access_admin.split_roles(found.roles)
        new_base, new_groups = access_admin.split_roles(parsed.roles)
        if "roles" in parsed.present and sorted(base) != sorted(new_base):
            out.append("roles")
        if "permission_groups" in parsed.present and sorted(groups) != sorted(new_groups):
            out.append("permission_groups")
    if "platform_access" in parsed.present and \
            (found.platform_access is not False) != parsed.platform_access:
        out.append("platform_access")
    if "notifications" in parsed.present:
        stored = None if found.notifications is None else sorted(found.notifications)
        wanted = None if parsed.events is None else sorted(parsed.events)
        if stored != wanted:
            out.append("notifications")
    return out


@dataclass
class _Run:
    actor: Actor
    unit: Any
    who: audit.Actor
    dry_run: bool
    invite: bool
    report: ImportReport
    seen_accounts: frozenset[str] | None
    budget_left: bool = True
    lookups_left: bool = True
    on_row: Callable[[RowResult], None] | None = None

    def visible(self, email: str) -> bool:
        return access_lists_repo.visible_account(self.seen_accounts, email=email) is not None

    def reveal(self) -> bool:
        """Whether this row may say that an address it cannot see has an account:
        each such answer spends one send from the unit's hourly budget
        (:func:`idp.accounts.invites.spend_send_budget`, dry runs too), as adding a
        contact does, so that a file of guessed addresses probes no faster than
        invitations go out. False once the budget is spent."""
        if not self.lookups_left:
            return False
        try:
            invites.spend_send_budget(self.unit.id)
        except invites.SendLimit:
            self.lookups_left = False
            return False
        return True

    def spend(self) -> bool:
        """One invitation from the unit's hourly budget; False once it is spent (the
        rest of this run defers its invitations)."""
        if not self.budget_left or not self.invite:
            return False
        try:
            invites.spend_send_budget(self.unit.id)
        except invites.SendLimit:
            self.budget_left = False
            return False
        return True

    def classify(self, parsed: ParsedRow, found: Any) -> tuple[str, RowResult | None]:
        """What the row is (``error``, ``link``, ``new``, ``existing``), and for an
        error its result; reads only."""
        email = parsed.email
        if parsed.errors:
            e = parsed.errors[0]
            return "error", RowResult(parsed.number, email, "error", e.column, e.code, e.message)
        if found is not None and found.access_id is not None:
            return "existing", None
        if found is not None:  # an account without an access here
            if not self.visible(email):
                if not self.reveal():
                    return "error", RowResult(
                        parsed.number, email, "error", "email", "too_many_lookups",
                        "This unit checked as many unknown addresses this hour as it may; "
                        "run the file again later.")
                return "error", RowResult(
                    parsed.number, email, "error", "email", "person_exists",
                    "This address has an account you cannot see; ask the person to be "
                    "linked by a unit that has them.")
            return "link", None
        errors = _name_errors(parsed)
        try:
            ownership.check_new_address(self.unit.id, email)
        except ownership.AddressRefused as exc:
            errors.append(RowError("email", exc.reason,
                                   "This address lies in a domain another company verified."))
        if errors:
            e = errors[0]
            return "error", RowResult(parsed.number, email, "error", e.column, e.code, e.message)
        return "new", None

    def wants_invitation(self, kind: str, parsed: ParsedRow, found: Any) -> bool:
        if kind == "new":
            return parsed.platform_access
        return kind == "existing" and (
            found.status == AccessStatus.INVITED.value and found.platform_access is not False
            and found.details_sent_at is None)

    def stage(self, kind: str, parsed: ParsedRow, found: Any, invite: bool,
              messages: list[str]) -> RowResult:
        """Stage the row's change (not in a dry run); ``invite``: its invitation's
        share of the send budget is spent."""
        email = parsed.email
        if kind == "link":
            if not self.dry_run:
                access_admin.stage_link(found.account_id, self.unit.id, parsed.roles,
                                        parsed.platform_access, parsed.events, self.who)
            return RowResult(parsed.number, email, "created", None, "linked")
        if kind == "new":
            if not self.dry_run:
                data = invites.NewContact(
                    email=email, given_name=parsed.given_name, family_name=parsed.family_name,
                    mobile=parsed.mobile, roles=parsed.roles,
                    platform_access=parsed.platform_access,
                )
                _, _, _, staged = invites.stage_new_contact(
                    self.unit, data, email, parsed.roles, parsed.mobile, parsed.events,
                    self.who, invite=invite,
                )
                messages.extend(staged)
            deferred = parsed.platform_access and not invite and not self.dry_run
            return RowResult(parsed.number, email, "created", None,
                             "invitation_deferred" if deferred else None)
        due = self.wants_invitation(kind, parsed, found)
        if due and invite:
            row = next(iter(access_lists_repo.by_ids([found.access_id])), None)
            resent = invites.stage_resend(row, self.who, spend=False) if row else None
            if resent:
                messages.extend(resent)
                return RowResult(parsed.number, email, "invited")
        differs = _differs(parsed, found)
        if differs:
            return RowResult(parsed.number, email, "unchanged", ",".join(differs),
                             "differs", "The access exists; an import does not change it.")
        if due and not self.dry_run:
            return RowResult(parsed.number, email, "unchanged", None,
                             "invitation_deferred", "The invitation is still to be sent.")
        return RowResult(parsed.number, email, "unchanged")

    def batch(self, rows: list[ParsedRow]) -> None:
        """Decide (and outside a dry run commit) one batch; on a conflict, again
        row by row (a row's spent invitation budget stays spent)."""
        try:
            results, messages = self._batch(rows)
        except Conflict:
            results, messages = [], []
            for parsed in rows:
                try:
                    done, sent = self._batch([parsed])
                except Conflict:
                    done, sent = [RowResult(parsed.number, parsed.email, "error", None,
                                            "conflict", "Changed concurrently; run again.")], []
                results += done
                messages += sent
        for result in results:
            self.report.add(result)
            if self.on_row is not None:
                self.on_row(result)
        if rows:
            self.report.committed_rows = rows[-1].number
        invites.deliver(messages)

    def _batch(self, rows: list[ParsedRow]) -> tuple[list[RowResult], list[str]]:
        """Read (one query), classify, spend the send budget (outside the
        transaction: the budget's counter must not wait for it), then stage and
        commit the batch in one transaction."""
        emails = [p.email for p in rows if not p.errors]
        found = {r.email: r for r in access_lists_repo.by_emails(self.unit.id, emails)}
        plan = []
        for parsed in rows:
            match = found.get(parsed.email)
            kind, error = self.classify(parsed, match)
            invite = (error is None and not self.dry_run
                      and self.wants_invitation(kind, parsed, match) and self.spend())
            plan.append((parsed, match, kind, error, invite))
        messages: list[str] = []
        if self.dry_run:
            return [error or self.stage(kind, parsed, match, False, messages)
                    for parsed, match, kind, error, _ in plan], []
        with atomic(), accesses_repo.batched():
            results = [error or self.stage(kind, parsed, match, invite, messages)
                       for parsed, match, kind, error, invite in plan]
        return results, messages


def _digest(email: str) -> int:
    return int.from_bytes(hashlib.blake2b(email.encode(), digest_size=8).digest(), "big")


def run_import(
    actor: Actor, unit_id: str, source: IO[bytes], *, dry_run: bool, invite: bool = True,
    who: audit.Actor | None = None, limit: int | None = None,
    progress: Callable[[int], None] | None = None,
    on_row: Callable[[RowResult], None] | None = None,
) -> ImportReport:
    """Import the CSV in ``source`` into the unit (see the module). ``limit``: at
    most so many bytes (:class:`CsvRefused` ``too_large`` beyond; the rows before
    stay committed); ``progress(n)`` after each ``n`` bytes read; ``on_row`` with
    every row's result. :class:`idp.rights.NotPermitted` without ``users.manage``;
    :class:`CsvRefused` for a file that cannot be read as a whole (nothing written
    then, unless the file breaks after some batches: see ``committed_rows``)."""
    require(actor, "users.manage", unit_id)
    unit = units.get(unit_id)
    who = who or audit_actor(actor)
    header, rows = _reader(source, limit, progress)
    positions = _check_header(header)
    report = ImportReport(dry_run=dry_run)
    run = _Run(actor, unit, who, dry_run, invite, report,
               access_admin.units_where(actor, "users.manage"), on_row=on_row)
    checker = _Checker(actor, unit.id)
    seen: set[int] = set()
    batch: list[ParsedRow] = []
    failed: CsvRefused | None = None
    try:
        for number, cells in enumerate(rows, start=2):
            if not any(c.strip() for c in cells):
                continue
            parsed = _parse(number, cells, positions, checker)
            report.rows += 1
            if not parsed.errors:
                key = _digest(parsed.email)
                if key in seen:
                    parsed.errors.append(RowError("email", "duplicate_email",
                                                  "The address appears earlier in the file."))
                seen.add(key)
            batch.append(parsed)
            if len(batch) >= BATCH:
                run.batch(batch)
                batch = []
        run.batch(batch)
    except CsvRefused as exc:
        failed = exc
    with atomic():
        audit.record(who, "accesses.imported", None, {
            "unit_id": unit.id, "dry_run": dry_run, "rows": report.rows,
            "counts": report.counts, "errors": report.errors,
            "committed_rows": report.committed_rows,
            "failed": failed.code if failed else None,
        }, unit_id=unit.id)
    if failed is not None:
        failed.report = report
        raise failed
    return report


def count_rows(data: bytes) -> int:
    """The number of non-empty rows after the header of the CSV ``data`` (what an
    import of it reports as ``rows``); :class:`CsvRefused` for a file that cannot be
    read as CSV or whose header names no import's columns (nothing written)."""
    header, rows = _reader(io.BytesIO(data), None, None)
    _check_header(header)
    return sum(1 for cells in rows if any(c.strip() for c in cells))
