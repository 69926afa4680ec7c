"""Impersonation ("log in as account", issue 13 item 2): start acting as one of a
unit's people in this browser.

Only with the browser's own session (and its ``X-CSRF-Token``): the answer switches
the browser's session cookie to the target's. An administration API client's bearer
token is refused (403 ``impersonation_refused``): there is no browser to act in.
The rules live in :mod:`idp.interaction.impersonation` and
:func:`idp.rights.require_impersonation`.
"""

from __future__ import annotations

from datetime import datetime

from flask import url_for
from pydantic import BaseModel, ConfigDict, Field

from idp.api import bp
from idp.api.endpoint import Call, endpoint
from idp.api.problems import Problem, forbidden, not_found
from idp.interaction import impersonation
from idp.rights import ImpersonationRefused, NotPermitted

REFUSALS = {
    "self": "Nobody impersonates themselves.",
    "outranks": "This person holds more rights than you.",
    "not_a_person": "Only a person signed in in a browser can impersonate; "
    "administration API clients cannot.",
}


class ImpersonationStart(BaseModel):
    """Why, and for how long (at most ``IDP_IMPERSONATION_MINUTES``, the default)."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=impersonation.MAX_REASON)
    minutes: int | None = Field(None, ge=1, le=480)


class ImpersonationOut(BaseModel):
    """A started impersonation: the browser's session is now the target's."""

    id: str
    unit_id: str
    access_id: str
    account_id: str = Field(description="The person acted as")
    reason: str
    started_at: datetime
    ends_at: datetime
    redirect_to: str = Field(description="Where to send the browser now (the dashboard)")


@endpoint(
    bp, "POST", "/units/{unit_id}/accesses/{access_id}/impersonation",
    summary="Act as this person (impersonation)", tag="accesses",
    body=ImpersonationStart, response=ImpersonationOut, status=201,
    permission="impersonate", extra_statuses=(409,),
)
def start_impersonation(call: Call, unit_id: str, access_id: str) -> ImpersonationOut:
    """Switch this browser's session to the access holder's for at most `minutes`
    (default and maximum `IDP_IMPERSONATION_MINUTES`), with a required `reason`.
    Needs the `impersonate` permission for the unit and the caller's own session with
    `X-CSRF-Token`; refused (403 `impersonation_refused`) for oneself, for a person
    holding more rights than the caller, and for API clients. 422
    `access_inactive`/`account_blocked` for a suspended access or a blocked account,
    409 `already_impersonating`. Tokens issued meanwhile carry `act`; ending it
    (`POST /account/impersonation/end`, or the time limit) returns to the caller's
    own session."""
    body: ImpersonationStart = call.body
    try:
        started = impersonation.start(call.actor, unit_id, access_id, body.reason, body.minutes)
    except ImpersonationRefused as exc:
        raise Problem(403, "impersonation_refused", REFUSALS.get(exc.code, str(exc))) from exc
    except NotPermitted as exc:
        raise (not_found("unit") if exc.foreign else forbidden("impersonate")) from exc
    except impersonation.Refused as exc:
        if exc.code == "not_found":
            raise not_found("access") from exc
        status = 409 if exc.code == "already_impersonating" else 422
        raise Problem(status, exc.code, str(exc)) from exc
    row = started.row
    return ImpersonationOut(
        id=row.id, unit_id=row.unit_id, access_id=access_id,
        account_id=row.target_account_id, reason=row.reason, started_at=row.started_at,
        ends_at=row.ends_at, redirect_to=url_for("dashboard.home"),
    )
