"""Links of upstream subjects to people without an e-mail address (issue 18 item 2):
a unit's administrator links a subject of the unit's own connector to a user the
unit's SCIM provisioned without an address, lists the links of an account, and
removes a link. The rules are in :mod:`idp.federation.admin`; this module validates
and answers."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from idp.api import bp, pages
from idp.api.endpoint import Call, endpoint
from idp.api.pages import Page, PageQuery
from idp.api.problems import Problem, conflict, forbidden, invalid, not_found
from idp.federation import admin
from idp.rights import NotPermitted

PERMISSION = admin.PERMISSION


class LinkIn(BaseModel):
    """The upstream subject and the unit's SCIM user to link it to."""

    model_config = ConfigDict(extra="forbid")

    account: str = Field(min_length=1, max_length=320,
                         description="The SCIM user: account id, SCIM id or userName")
    subject: str = Field(min_length=1, max_length=255,
                         description="The upstream subject (Entra: <tid>/<oid>; SAML: NameID)")
    issuer: str | None = Field(None, max_length=500,
                               description="The upstream issuer; null: the connector's")


class LinkQuery(PageQuery):
    """Paging, and optionally one account's links only."""

    account_id: str | None = Field(None, max_length=64, description="Only this account's")


class LinkOut(BaseModel):
    """An upstream identity linked to an account through the connector."""

    id: str
    connector_id: str
    account_id: str
    issuer: str
    subject: str
    created_at: datetime
    last_login_at: datetime | None


def _refused(exc: admin.LinkRefused) -> Problem:
    if exc.code in ("connector_not_found", "link_not_found"):
        return not_found("connector" if exc.code == "connector_not_found" else "link")
    if exc.code == "subject_linked":
        return conflict(exc.code, str(exc))
    pointer = {"issuer_required": "/body/issuer", "invalid_subject": "/body/subject",
               "not_email_less_scim_user": "/body/account"}.get(exc.code)
    return invalid(exc.code, str(exc), pointer)


@endpoint(
    bp, "POST", "/units/{unit_id}/connectors/{connector_id}/links",
    summary="Link an upstream subject to a user without an e-mail address",
    tag="connectors", body=LinkIn, response=LinkOut, status=201, permission=PERMISSION,
    extra_statuses=(409,),
)
def create_link(call: Call, unit_id: str, connector_id: str) -> LinkOut:
    """Links the subject of the unit's own connector to a user the unit's SCIM
    provisioned without an e-mail address; that subject then signs the user in.
    422 `not_email_less_scim_user` for anyone else, 409 `subject_linked` when the
    subject is linked already (a link is never moved: unlink it first), 403 when the
    user holds a right the caller lacks (the link would sign the caller in as them).
    Audited."""
    body: LinkIn = call.body
    try:
        row = admin.link_subject(call.actor, unit_id, connector_id, body.account,
                                 body.subject, body.issuer)
    except admin.LinkRefused as exc:
        raise _refused(exc) from exc
    except NotPermitted as exc:  # the user holds more rights than the caller
        raise forbidden(exc.permission) from exc
    return LinkOut.model_validate(admin.describe_link(row))


@endpoint(
    bp, "GET", "/units/{unit_id}/connectors/{connector_id}/links",
    summary="List the links of the connector", tag="connectors",
    query=LinkQuery, response=Page[LinkOut], permission=PERMISSION,
)
def list_links(call: Call, unit_id: str, connector_id: str) -> Page[LinkOut]:
    """The upstream subjects linked through the unit's connector (to one account
    with `account_id`), paged by link id."""
    query: LinkQuery = call.query
    key = pages.decode(query.cursor, (str,))
    try:
        rows = admin.links(call.actor, unit_id, connector_id, query.account_id,
                           key[0] if key else None, query.limit + 1)
    except admin.LinkRefused as exc:
        raise _refused(exc) from exc
    more, rows = len(rows) > query.limit, rows[: query.limit]
    return Page[LinkOut](
        items=[LinkOut.model_validate(admin.describe_link(r)) for r in rows],
        next_cursor=pages.encode([rows[-1].id]) if more else None,
    )


@endpoint(
    bp, "DELETE", "/units/{unit_id}/connectors/{connector_id}/links/{link_id}",
    summary="Remove a link", tag="connectors", permission=PERMISSION,
)
def delete_link(call: Call, unit_id: str, connector_id: str, link_id: str) -> None:
    """Removes the link of the unit's connector; the subject no longer signs the
    account in, and the account stays. Audited."""
    try:
        admin.unlink_subject(call.actor, unit_id, connector_id, link_id)
    except admin.LinkRefused as exc:
        raise _refused(exc) from exc
