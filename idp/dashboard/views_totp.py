"""The dashboard's "Two-step verification" section (:mod:`idp.factors.totp`): status, set up
(through the login interaction's set-up pages, then back to the dashboard) and
remove (only while no unit of the employee requires it). POSTs carry the app-wide
CSRF token and answer 303 See Other (RFC 9110 §15.4.4)."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Response, url_for

from idp.dashboard.blueprint import bp
from idp.factors import totp
from idp.interaction import pending as interaction
from idp.interaction import sessions
from idp.login.common import own_interaction
from idp.web.redirects import redirect

SETUP_PARAM = "totp_setup"


@dataclass
class TwoStep:
    """What the dashboard shows: whether TOTP is on and which units require it."""

    enrolled: bool
    required_by: list[str]


@bp.app_template_global("two_step_status")
def two_step_status(account_id: str) -> TwoStep:
    """The account's two-step verification status for the dashboard template."""
    return TwoStep(totp.enrolled(account_id), totp.required_by_units(account_id))


def _see_section() -> Response:
    return redirect(url_for("dashboard.home") + "#two-step", code=303)


@bp.post("/two-step/setup")
def two_step_setup() -> Response:
    """Start setting up TOTP: a dashboard interaction authenticated by this session
    goes to the set-up page; the confirmed set-up signs in again with ``mfa`` and
    returns to the dashboard. Without a session or with TOTP already on: back to the
    dashboard."""
    row = sessions.current()
    if row is None or totp.enrolled(row.account_id):
        return _see_section()
    ix = own_interaction({SETUP_PARAM: True})
    ix.account_id = row.account_id
    ix.auth_time = row.auth_time.timestamp()
    ix.amr = list(row.amr or [])
    ix.acr = row.acr
    ix.session_id_hash = row.id_hash
    interaction.save(ix)
    return redirect(url_for("login.totp_setup", interaction_id=ix.id), code=303)


@bp.post("/two-step/remove")
def two_step_remove() -> Response:
    """Remove the employee's own TOTP (audited); refused while a unit of theirs
    requires it (the section then still shows it on)."""
    row = sessions.current()
    if row is not None:
        totp.remove_own(row.account_id)
    return _see_section()
