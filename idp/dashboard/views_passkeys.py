"""The dashboard's "Passkeys" section (:mod:`idp.factors.passkeys`): list (name,
created, last used, backup eligible and state), register, rename and remove.

``POST /account/passkeys/options`` answers the WebAuthn creation options as JSON
(CSRF token in ``X-CSRFToken``); the challenge is bound to this session and used
once. ``POST /account/passkeys`` takes the new credential (form field ``credential``,
filled by ``static/passkeys.js``). Removing a passkey needs a sign-in of the last
:data:`RECENT_SECONDS` (otherwise the page offers to sign in again): a session left
open on a shared computer cannot take away the owner's way in. POSTs carry the
app-wide CSRF token and answer 303 See Other (RFC 9110 §15.4.4)."""

from __future__ import annotations

import time

from flask import Response, request, url_for

from idp.dashboard import formstate
from idp.dashboard.blueprint import bp
from idp.factors import passkeys
from idp.interaction import signed_in
from idp.login.formstate import FormState
from idp.store.models import Account, PasskeyCredential, Session
from idp.web.redirects import redirect

RECENT_SECONDS = 10 * 60


def _own_login() -> tuple[Session, Account] | None:
    """This browser's live login when it is the employee's own: an impersonation's
    session (someone acting as them, :mod:`idp.interaction.impersonation`) may not add,
    rename or remove passkeys - a passkey added then would let the actor sign in as
    the employee after the impersonation ended."""
    login = signed_in.live_login()
    if login is None or login[0].impersonation_id is not None:
        return None
    return login


@bp.app_template_global("passkeys_manageable")
def passkeys_manageable() -> bool:
    """Whether the dashboard may offer adding, renaming and removing passkeys."""
    return _own_login() is not None


@bp.app_template_global("passkeys_of")
def passkeys_of(account_id: str) -> list[PasskeyCredential]:
    """The account's passkeys for the dashboard template."""
    return passkeys.listed(account_id)


@bp.app_template_global("signed_in_recently")
def signed_in_recently(row: Session | None = None) -> bool:
    """Whether this session's sign-in is recent enough to remove a passkey."""
    if row is None:
        login = signed_in.live_login()
        row = login[0] if login is not None else None
    return row is not None and time.time() - row.auth_time.timestamp() <= RECENT_SECONDS


def _back(session_id_hash: str | None, state: FormState | None = None) -> Response:
    if session_id_hash is not None and state is not None:
        formstate.remember(session_id_hash, state)
    return redirect(url_for("dashboard.home") + "#passkeys", code=303)


@bp.post("/passkeys/options")
def passkey_creation_options() -> Response:
    """The creation options for a new passkey of the signed-in employee (401 without)."""
    login = _own_login()
    if login is None:
        return Response('{"error":"login_required"}', status=401, mimetype="application/json")
    row, account = login
    resp = Response(passkeys.registration_options(account, row.id_hash),
                    mimetype="application/json")
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.post("/passkeys")
def passkey_register() -> Response:
    """Store the new passkey (audited ``passkey.registered``)."""
    login = _own_login()
    if login is None:
        return _back(None)
    row, account = login
    refused = passkeys.register(
        account.id, row.id_hash,
        request.form.get("credential", "")[: passkeys.MAX_CREDENTIAL_JSON],
        request.form.get("name", "")[:200],
    )
    if refused is not None:
        return _back(row.id_hash, FormState(errors={"passkey": refused.value}))
    return _back(row.id_hash, FormState(notice="passkey_registered"))


@bp.post("/passkeys/<passkey_id>/rename")
def passkey_rename(passkey_id: str) -> Response:
    """Give one of the employee's passkeys a new name."""
    login = _own_login()
    if login is None:
        return _back(None)
    row, account = login
    ok = passkeys.rename(account.id, passkey_id[:32], request.form.get("name", "")[:200])
    return _back(row.id_hash, FormState(notice="passkey_renamed") if ok
                 else FormState(errors={"passkey": "passkey_name"}))


@bp.post("/passkeys/<passkey_id>/remove")
def passkey_remove(passkey_id: str) -> Response:
    """Remove one of the employee's passkeys (audited ``passkey.removed``); refused
    unless the sign-in is recent."""
    login = _own_login()
    if login is None:
        return _back(None)
    row, account = login
    if not signed_in_recently(row):
        return _back(row.id_hash, FormState(errors={"passkey": "passkey_reauth"}))
    ok = passkeys.remove(account.id, passkey_id[:32])
    return _back(row.id_hash, FormState(notice="passkey_removed") if ok
                 else FormState(errors={"passkey": "passkey_unknown"}))


@bp.post("/passkeys/sign-in-again")
def passkey_sign_in_again() -> Response:
    """Start a new dashboard sign-in (to remove a passkey afterwards)."""
    from idp.dashboard.views import _start_login

    return _start_login()
