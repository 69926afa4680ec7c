"""The unit's accesses in the console: the list with its filter bar and keyset pages,
bulk actions, CSV export and import, and "invite or link a contact". Every action is a
service of :mod:`idp.accounts` (the same the administration API calls):

* the list: :func:`idp.accounts.access_admin.page`, :data:`PAGE_SIZE` rows in
  address order, continued after the last row's access id (one query plus the
  guard's); ``users.read``;
* bulk actions: :func:`idp.accounts.access_admin.bulk` on the ticked accesses;
  ``users.manage`` (and per access what the service decides);
* CSV export: :func:`idp.accounts.access_csv.export` with the list's filters;
  ``exports.read``; CSV import: the uploaded file runs in the background
  (:mod:`idp.accounts.import_jobs`, :func:`idp.accounts.access_csv.run_import`),
  its progress page shows the rows done and the errors so far, refreshing itself
  without JavaScript while it runs, then the report; ``users.manage``;
* invite or link: :func:`idp.accounts.invites.add_contact` for a new address, and
  :func:`idp.accounts.access_admin.link` when the address has an account already;
  ``users.manage``.
"""

from __future__ import annotations

from typing import Any

from flask import Response, request, stream_with_context
from flask_babel import gettext
from flask_babel import lazy_gettext as _l

from idp.accounts import access_admin, access_csv, import_jobs, invites
from idp.console import messages, nav
from idp.console.blueprint import bp
from idp.console.guard import UnitPage, unit_page
from idp.i18n import current_language
from idp.rights import NotPermitted
from idp.services import settings
from idp.store.access_lists_repo import Filter
from idp.store.models import AccessStatus
from idp.units import registry as units

PAGE_SIZE = 50
MAX_Q = 100
MAX_ID = 64
MAX_FIELD = 320
REFRESH_SECONDS = 2
BULK_ACTIONS: dict[str, Any] = {
    "suspend": _l("Suspend"),
    "reactivate": _l("Reactivate"),
    "resend": _l("Send access details"),
    "remove": _l("Remove"),
}

STATUS_LABELS: dict[str, Any] = {
    AccessStatus.INVITED.value: _l("Invited"),
    AccessStatus.ACTIVE.value: _l("Active"),
    AccessStatus.SUSPENDED.value: _l("Suspended"),
    AccessStatus.REMOVED.value: _l("Removed"),
}
ROLE_LABELS: dict[str, Any] = {
    "main_user": _l("Main user"),
    "commercial_contact": _l("Commercial contact"),
    "operational_contact": _l("Operational contact"),
    "employee": _l("Employee"),
}

nav.register("accesses", _l("Accesses"), "console.accesses", "users.read", order=10)


def role_label(role: str) -> str:
    """A built-in role in the reader's language; a permission group by its name."""
    return str(ROLE_LABELS.get(role, role))


def clean(value: str | None, limit: int = MAX_FIELD) -> str:
    """A form or query value, stripped, cut to ``limit``, without NUL."""
    return (value or "").strip()[:limit].replace("\x00", "")


def valid_id(value: str) -> bool:
    return 0 < len(value) <= MAX_ID and value.isalnum()


def list_filter(
    page: UnitPage, args: Any, roles: tuple[str, ...] | None = None
) -> tuple[Filter, dict[str, str]]:
    """The list's filter from the query string (values outside the choices, the
    unit's ``roles``, are ignored) and the values to show in the filter bar."""
    status = args.get("status", "")
    status = status if status in STATUS_LABELS else ""
    role = args.get("role", "")
    role = role if role in (roles or units.roles_for(page.unit)) else ""
    q = clean(args.get("q"), MAX_Q)
    f = Filter(
        unit_ids=frozenset({page.unit.id}), status=status or None, role=role or None,
        q=q or None,
    )
    return f, {"status": status, "role": role, "q": q}


def _after(page: UnitPage, value: str) -> tuple[str | None, str] | None:
    """The keyset after the access ``value`` of this unit (the last row shown)."""
    if not valid_id(value):
        return None
    try:
        row = access_admin.get(page.unit.id, value)
    except access_admin.Refused:
        return None
    return (row.account.email, row.id)


@bp.get("/units/<unit>/accesses")
@unit_page("users.read")
def accesses(page: UnitPage) -> Response:
    """The list: filter bar (status, role, text), :data:`PAGE_SIZE` per page in
    address order (``?after=<access id>`` continues), checkboxes for the bulk
    actions, the export link, the import form and the invitation form (the last
    three for those who may use them)."""
    roles = units.roles_for(page.unit)
    f, shown = list_filter(page, request.args, roles)
    rows, more = access_admin.page(f, _after(page, request.args.get("after", "")), PAGE_SIZE)
    return page.render(
        "console/accesses.html", current="accesses", rows=rows, more=more, filters=shown,
        statuses=STATUS_LABELS, roles=roles, role_label=role_label,
        base_roles=units.BASE_ROLES, groups=roles[len(units.BASE_ROLES):],
        next_after=rows[-1].id if more and rows else None, bulk_actions=BULK_ACTIONS,
        code_text=messages.text,
        export_query={k: v for k, v in shown.items() if v},
    )


@bp.post("/units/<unit>/accesses/bulk")
@unit_page("users.manage")
def bulk(page: UnitPage) -> Response:
    """Run a bulk action on the ticked accesses (``ids``) of this unit; ``remove``
    needs the ``confirm`` box. The counts (and why some were refused) come back as
    the notice."""
    action = request.form.get("action", "")
    ids = [i for i in request.form.getlist("ids") if valid_id(i)][: access_admin.MAX_IDS]
    back = {k: v for k, v in list_filter(page, request.form)[1].items() if v}
    if action not in BULK_ACTIONS:
        page.remember(errors={"bulk-action": messages.text("invalid_value")})
    elif not ids:
        page.remember(errors={"bulk-action": messages.text("nothing_selected")})
    elif action == "remove" and request.form.get("confirm") != "yes":
        page.remember(errors={"bulk-confirm": messages.text("confirm")})
    else:
        bounds = Filter(unit_ids=frozenset({page.unit.id}))
        result = access_admin.bulk(page.actor, action, bounds, ids, None)
        codes = sorted({str(i["code"]) for i in result.items if i.get("code")})
        notice = gettext(
            "Done: %(done)s. Unchanged: %(unchanged)s. Refused: %(refused)s.",
            done=result.counts.get("done", 0), unchanged=result.counts.get("unchanged", 0),
            refused=result.counts.get("refused", 0),
        )
        if codes:
            notice += " " + " ".join(messages.text(c) for c in codes)
        page.remember(notice=notice)
    return page.see_other("console.accesses", anchor="accesses", **back)


@bp.get("/units/<unit>/accesses/export.csv")
@unit_page("exports.read")
def export(page: UnitPage) -> Response:
    """The list's accesses (with its filters) as CSV, streamed and audited by
    :func:`idp.accounts.access_csv.export`; ``dialect=excel-de`` for semicolons."""
    f, shown = list_filter(page, request.args)
    dialect = "excel-de" if request.args.get("dialect") == "excel-de" else "excel"
    chosen = access_csv.columns(None, page.can("users.manage"))
    f = access_csv.export_filter(f, bool(shown["status"]), False)
    chunks = access_csv.export(
        page.actor, page.unit.id, f, chosen, dialect,
        filters={k: v for k, v in shown.items() if v},
    )
    resp = Response(stream_with_context(chunks), mimetype="text/csv")
    resp.headers["Content-Disposition"] = 'attachment; filename="accesses.csv"'
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.post("/units/<unit>/accesses/import")
@unit_page("users.manage")
def import_csv(page: UnitPage) -> Response:
    """Store an uploaded CSV (the export's columns; ``dry_run`` checks only) as a
    background import (:func:`idp.accounts.import_jobs.start`) and go to its
    progress page; a file that cannot be read as the import's CSV is refused on the
    form."""
    upload = request.files.get("file")
    data = upload.read(settings().csv_import_max_bytes + 1) if upload is not None else b""
    if not data:
        page.remember(errors={"file": gettext("Choose a CSV file.")})
        return page.see_other("console.accesses", anchor="import")
    dry_run = request.form.get("dry_run") == "yes"
    try:
        import_id = import_jobs.start(page.actor, page.unit.id, data, dry_run=dry_run)
    except access_csv.CsvRefused as exc:
        page.remember(errors={"file": str(exc)})
        return page.see_other("console.accesses", anchor="import")
    return page.see_other("console.import_progress", import_id=import_id)


@bp.get("/units/<unit>/accesses/imports/<import_id>")
@unit_page("users.manage")
def import_progress(page: UnitPage, import_id: str) -> Response:
    """An import's progress: rows done of all rows and the rows with errors so far,
    refreshed every :data:`REFRESH_SECONDS` by the page itself while it runs; when
    finished the report (as the import answered). 404 for another unit's import,
    and for one deleted ``IDP_CSV_IMPORT_RETENTION_DAYS`` after it finished
    (:func:`idp.accounts.import_jobs.prune`): a console page that says so."""
    row = import_jobs.get(page.actor, page.unit.id, import_id) if valid_id(import_id) else None
    if row is None:
        resp = page.render("console/import_gone.html", status=404, current="accesses",
                           retention_days=settings().csv_import_retention_days)
        resp.headers["Cache-Control"] = "no-store"
        return resp
    done = import_jobs.finished(row)
    failure = row.failure
    if failure == import_jobs.FORBIDDEN:
        failure = gettext("The person who uploaded the file may no longer manage this "
                          "unit's accesses; nothing was imported.")
    elif failure == import_jobs.GAVE_UP:
        failure = gettext("The import could not be run; upload the file again.")
    resp = page.render(
        "console/import_progress.html", current="accesses", job=row, finished=done,
        report=row.report, failure=failure, code_text=messages.text,
        refresh=None if done else REFRESH_SECONDS,
    )
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _roles_from(form: Any, page: UnitPage) -> tuple[list[str], list[str]]:
    """The ticked built-in roles and permission groups of a form."""
    allowed_groups = set(units.group_names(page.unit))
    roles = [r for r in form.getlist("roles") if r in units.BASE_ROLES]
    groups = [g for g in form.getlist("groups") if g in allowed_groups]
    return roles, groups


@bp.post("/units/<unit>/accesses/invite")
@unit_page("users.manage")
def invite(page: UnitPage) -> Response:
    """Link a person the admin may see already (an active access, no second
    account: :func:`idp.accounts.access_admin.link`), or else invite a new person
    (their account and an access; with platform access an invitation e-mail, and
    an SMS code when a mobile number is given). An address with an account outside
    the admin's units is refused as the API refuses it (``no_such_person``)."""
    form = request.form
    values = {name: clean(form.get(name)) for name in
              ("email", "given_name", "family_name", "mobile")}
    roles, groups = _roles_from(form, page)
    platform = form.get("platform_access", "yes") != "no"
    data = invites.NewContact(
        email=values["email"], given_name=values["given_name"],
        family_name=values["family_name"], mobile=values["mobile"] or None,
        roles=[*roles, *groups], platform_access=platform,
        send_welcome=not platform and form.get("send_welcome") == "yes",
        language=current_language(),
    )
    kept = {**values, "platform_access": "yes" if platform else "no",
            "roles": ",".join(roles), "groups": ",".join(groups)}

    def refused(code: str, field: str | None) -> Response:
        shown = "roles" if field == "permission_groups" else field or "email"
        page.remember(errors={shown: messages.text(code)}, values=kept)
        return page.see_other("console.accesses", anchor="invite")

    try:  # someone the admin may see already: an access, no second account
        access_admin.link(page.actor, page.unit.id, email=values["email"], roles=roles,
                          groups=groups, platform_access=platform)
        notice = gettext("%(email)s already had an account and was linked to this unit.",
                         email=values["email"])
    except access_admin.Refused as exc:
        if exc.code != "no_such_person":
            return refused(exc.code, exc.field)
        try:
            invites.add_contact(page.unit.id, data, page.actor)
        except invites.PersonExists:  # an account outside the admin's units
            return refused("no_such_person", "email")
        except invites.ContactRefused as exc2:
            return refused(exc2.code, exc2.field)
        except NotPermitted:
            return refused("forbidden", "roles")
        notice = (gettext("%(email)s was invited.", email=values["email"]) if platform
                  else gettext("%(email)s was added.", email=values["email"]))
    page.remember(notice=notice)
    return page.see_other("console.accesses")
