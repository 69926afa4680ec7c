"""The invitation pages (``/invitation/<token>``, blueprint ``invitation``): where the
link of an invitation e-mail (:mod:`idp.accounts.invites`) lands.

* ``GET`` shows whom the invitation is for and, when the invitation has one, asks
  for the SMS registration code. It only reads: a mail scanner following the link
  uses nothing up.
* ``POST`` redeems the link (and code): the access becomes active and the address
  counts as verified, because the single-use link reached that mailbox. When the
  address's domain requires the company's own sign-in (``require_sso``), the person
  goes there instead, as with an e-mail code; otherwise they are signed in through
  the normal end of authentication (:func:`idp.login.email_signin.finish_email_sign_in`:
  TOTP when a policy asks, session) and completes the wallet form before reaching their dashboard.
* A wrong code shows the tries left; an expired, used, revoked or unknown link shows
  what to do (ask the administrator for a new invitation), never an error.

The token sits in the path, so these pages send ``Referrer-Policy: no-referrer`` and
are never cached.
"""

from __future__ import annotations

from flask import Blueprint, Response, render_template, request
from flask_babel import lazy_gettext as _l

from idp.accounts import invites
from idp.interaction import pending as interaction
from idp.login.email_signin import finish_email_sign_in, sso_instead_of_code
from idp.login.flow import OWN_PROTOCOL, see_other
from idp.login.messages import message, wrong_code

bp = Blueprint("invitation", __name__, url_prefix="/invitation")

# The dashboard's sign-in (idp.dashboard.views): where an accepted invitation ends.
DASHBOARD_CLIENT_ID = "unitgate-account"
DASHBOARD_RESUME = "dashboard.resume"
CLIENT_NAME = _l("Unitgate account")
GONE_STATUS = {"unknown": 404, "blocked": 403}


def _private(resp: Response) -> Response:
    resp.headers["Referrer-Policy"] = "no-referrer"
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _gone(status: str) -> Response:
    html = render_template("login/invitation_gone.html", status=status)
    return _private(Response(html, status=GONE_STATUS.get(status, 410), mimetype="text/html"))


def _form(token: str, opened: invites.Opened, error: str = "") -> Response:
    html = render_template("login/invitation.html", token=token, opened=opened, error=error)
    return _private(Response(html, mimetype="text/html"))


@bp.get("/<token>")
def show(token: str) -> Response:
    """The invitation: for whom, from which unit, and the SMS code field if needed."""
    opened = invites.open_link(token)
    if opened.status != invites.PENDING:
        return _gone(opened.status)
    return _form(token, opened)


@bp.post("/<token>")
def accept(token: str) -> Response:
    """Redeem the invitation, sign the person in and continue with the wallet form."""
    code = request.form.get("code", "")[:100]
    opened = invites.open_link(token)
    if opened.status == invites.PENDING and opened.sms_required and not (
        invites.normalise_code(code)
    ):  # an empty submission costs no try
        return _form(token, opened, message("required"))
    result = invites.accept(token, code)
    if result.status == "wrong_code":
        opened = invites.open_link(token)
        if opened.status != invites.PENDING:
            return _gone(opened.status)
        return _form(token, opened, wrong_code(result.tries_left))
    if result.status != "ok" or result.account is None:
        return _gone(result.status)
    ix = interaction.start(
        protocol=OWN_PROTOCOL,
        client_id=DASHBOARD_CLIENT_ID,
        client_name=str(CLIENT_NAME),
        resume_endpoint=DASHBOARD_RESUME,
        scopes=[],
    )
    sso = sso_instead_of_code(ix, result.account.email)
    if sso is not None:  # the company requires its own sign-in: the link signs no one in
        return _private(sso)
    resp = finish_email_sign_in(ix, result.account)
    if not ix.authenticated:  # a second factor is owed first, or the account is stopped
        return _private(resp)
    ix.unit_id = result.unit_id  # the wallet shows the invited unit's fields
    interaction.save(ix)
    return _private(see_other("login.profile", interaction_id=ix.id))
