"""Passkey sign-in on the login pages (:mod:`idp.factors.passkeys`).

``POST /interaction/<id>/passkey/options`` answers the WebAuthn request options as
JSON (the app-wide CSRF token in the ``X-CSRFToken`` header): for an interaction that
is not signed in, a discoverable sign-in replacing the e-mail code; for one on the TOTP
step (first factor held, or a live session that owes a second factor), the account's
passkeys with user verification required. ``POST /interaction/<id>/passkey`` takes
the browser's response (form field ``credential``, the JSON of the
``PublicKeyCredential``; the script in ``static/passkeys.js`` submits it) and answers
303 like every login form. The challenge is bound to the interaction and used once.
"""

from __future__ import annotations

from flask import Response, request

from idp.accounts import lifecycle as accounts
from idp.factors import passkeys, totp
from idp.factors.passkeys import Purpose, Refused
from idp.interaction.pending import Interaction
from idp.login.blueprint import bp
from idp.login.common import load
from idp.login.email_signin import sso_instead_of_code
from idp.login.flow import finish_authentication, next_step, see_other
from idp.login.formstate import FormState, remember
from idp.login.second_factor import Subject
from idp.login.second_factor import subject as _subject


def _second_factor(ix: Interaction) -> Subject | None:
    """The TOTP step's subject when a passkey of theirs may answer it."""
    subject = _subject(ix)
    if subject is None or ix.params.get("totp_setup") is True:
        return None  # setting up TOTP from the dashboard is not a sign-in step
    if not passkeys.has_any(subject.account.id):
        return None
    return subject


@bp.post("/<interaction_id>/passkey/options")
def passkey_options(interaction_id: str) -> Response:
    """The request options for this interaction's passkey step (409 when there is none)."""
    ix = load(interaction_id)
    subject = _second_factor(ix)
    if subject is not None:
        body = passkeys.authentication_options(Purpose.SECOND, ix.id, subject.account.id)
    elif not ix.authenticated:
        body = passkeys.authentication_options(Purpose.SIGN_IN, ix.id)
    else:
        return Response('{"error":"no_passkey_step"}', status=409, mimetype="application/json")
    resp = Response(body, mimetype="application/json")
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.post("/<interaction_id>/passkey")
def submit_passkey(interaction_id: str) -> Response:
    """Verify the assertion: the TOTP step passes (``amr`` plus the passkey's methods,
    ``acr`` MFA), or the sign-in goes on as after an e-mail code; a refusal returns
    to the page it came from with a message."""
    ix = load(interaction_id)
    credential = request.form.get("credential", "")[: passkeys.MAX_CREDENTIAL_JSON]
    subject = _second_factor(ix)
    if subject is not None:
        result = passkeys.verify(Purpose.SECOND, ix.id, credential)
        if isinstance(result, Refused):
            remember(ix, "totp", FormState(errors={"passkey": result.value}))
            return see_other("login.totp", interaction_id=ix.id)
        if subject.held and totp.release(ix.id) is None:
            return next_step(ix)  # a parallel request finished this sign-in already
        amr = list(subject.amr) + [m for m in result.amr if m not in subject.amr]
        return finish_authentication(ix, subject.account, amr, totp.ACR_MFA)
    if ix.authenticated:
        return next_step(ix)
    outcome = passkeys.verify(Purpose.SIGN_IN, ix.id, credential)
    if isinstance(outcome, Refused):
        remember(ix, "email", FormState(errors={"passkey": outcome.value}))
        return see_other("login.start", interaction_id=ix.id)
    account = accounts.get(outcome.account_id)
    if account is None:
        remember(ix, "email", FormState(errors={"passkey": Refused.UNKNOWN.value}))
        return see_other("login.start", interaction_id=ix.id)
    sso = sso_instead_of_code(ix, getattr(account, "email", None))
    if sso is not None:  # the domain requires its company SSO: no local factor counts
        return sso
    return finish_authentication(ix, account, outcome.amr)
