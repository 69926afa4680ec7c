"""The dashboard's routes. Every page is about the account of this browser's live
session (:func:`idp.interaction.sessions.current`) and nothing else; every state-changing form
is a POST with a CSRF token (Flask-WTF, app-wide) answered with 303 See Other
(RFC 9110 §15.4.4)."""

from __future__ import annotations

from typing import Any

from flask import Response, render_template, request, url_for
from flask_babel import lazy_gettext as _l

from idp.accounts import invitations
from idp.dashboard import formstate, overview, profile
from idp.dashboard.blueprint import bp
from idp.dashboard.messages import message
from idp.interaction import impersonation, rp_logout, sessions, signed_in
from idp.interaction import pending as interaction
from idp.login.common import (
    OWN_CLIENT_ID,
    OWN_CLIENT_NAME,
    expired_page,
    safe_next,
    start_own_login,
)
from idp.login.flow import OWN_PROTOCOL
from idp.login.formstate import FormState
from idp.purchases import listing
from idp.release import consent
from idp.store.models import Account, Session
from idp.web.redirects import redirect

CLIENT_ID = OWN_CLIENT_ID
CLIENT_NAME = OWN_CLIENT_NAME
MAX_MERCHANT_ID = 32


PURCHASE_STATUS = {
    "approved": _l("Approved"),
    "pending_approval": _l("Waiting for approval"),
    "refused": _l("Refused"),
    "confirmed": _l("Ordered"),
    "cancelled": _l("Cancelled"),
}


def purchase_status(status: str) -> str:
    """A purchase's status in the reader's language."""
    return str(PURCHASE_STATUS.get(status, status))


def _see_other(endpoint: str, **values: Any) -> Response:
    return redirect(url_for(endpoint, **values), code=303)


def _signed_in() -> tuple[Session, Account] | None:
    """This browser's live session and its account (:func:`idp.interaction.signed_in.current`)."""
    return signed_in.current()


_start_login = start_own_login


@bp.get("/")
def home_with_slash() -> Response:
    """``/account/`` (a typed or bookmarked URL) is the dashboard too: 308 to
    ``/account``, keeping the query (``?page=``)."""
    query = request.query_string.decode("ascii", "replace")
    return redirect(url_for("dashboard.home") + (f"?{query}" if query else ""), 308)


@bp.get("")
def home() -> Response:
    """The dashboard: name and e-mail, companies, sign-ins at merchants (50 per page,
    ``?page=``), consents with Withdraw, the profile form and Sign out. Without a
    live session: 303 to the login pages."""
    found = _signed_in()
    if found is None:
        return _start_login(request.args.get("next"))
    row, account = found
    state = formstate.recall(row.id_hash)
    shown = profile.chosen_access(account.id, request.args.get("unit"))
    fields = profile.fields(account, shown)
    for f in fields:
        if f.editable and f.form_name in state.values:
            f.value = state.values[f.form_name]
    html = render_template(
        "account/dashboard.html",
        account=account,
        companies=overview.companies(account.id),
        signins=overview.signins(account.id, overview.page_number(request.args.get("page"))),
        consents=overview.consents(account.id),
        impersonations=impersonation.history(account.id),
        invitations=invitations.open_for(account),
        purchases=listing.mine(account.id),
        purchase_status=purchase_status,
        approvals_waiting=listing.waiting_for(account.id),
        fields=fields,
        profile_unit=shown.unit if shown is not None else None,
        errors={name: message(key) for name, key in state.errors.items()},
        notice=message(state.notice),
    )
    return Response(html, mimetype="text/html")


@bp.get("/resume/<interaction_id>")
def resume(interaction_id: str) -> Response:
    """Where the login pages send the browser after a dashboard sign-in: consume the
    interaction (once) and show the dashboard."""
    ix = interaction.load(interaction_id)
    if ix is None or ix.protocol != OWN_PROTOCOL:
        return expired_page(interaction_id)
    done = interaction.consume(ix)
    if done is None or not done.authenticated:
        return expired_page()
    back = safe_next(str(done.params.get("next") or "")) if done.params else None
    if back:
        return redirect(back, code=303)
    return _see_other("dashboard.home")


def _merchant_form() -> tuple[Session, Account, str] | None:
    """This session's row and account and the posted ``merchant_id`` ("" when it is
    not a well-formed id), or None without a live session."""
    found = _signed_in()
    if found is None:
        return None
    row, account = found
    merchant_id = request.form.get("merchant_id", "")
    well_formed = 0 < len(merchant_id) <= MAX_MERCHANT_ID and merchant_id.isalnum()
    return row, account, merchant_id if well_formed else ""


@bp.post("/consents/withdraw")
def withdraw() -> Response:
    """Withdraw this account's consent for the merchant named in ``merchant_id``
    (audited by :func:`idp.release.consent.revoke`); its next sign-in asks again. Only a
    consent of this session's account can go, whatever id is posted."""
    found = _merchant_form()
    if found is None:
        return _see_other("dashboard.home")
    row, account, merchant_id = found
    removed = bool(merchant_id) and consent.revoke(account.id, merchant_id)
    notice = "consent_withdrawn" if removed else "consent_gone"
    formstate.remember(row.id_hash, FormState(notice=notice))
    return redirect(url_for("dashboard.home") + "#consents", code=303)


@bp.post("/consents/choose")
def choose() -> Response:
    """Save which optional items the merchant named in ``merchant_id`` receives (the
    ticked ``share`` boxes; :func:`idp.release.consent.choose`), for this session's
    account only; required items stay. The next sign-in there releases that, without
    asking again."""
    found = _merchant_form()
    if found is None:
        return _see_other("dashboard.home")
    row, account, merchant_id = found
    shown = next((c for c in overview.consents(account.id) if c.merchant_id == merchant_id),
                 None) if merchant_id else None
    saved = shown is not None and consent.choose(
        account.id, merchant_id, [i.key for i in shown.optional],
        request.form.getlist("share"),
    )
    formstate.remember(row.id_hash, FormState(notice="consent_changed" if saved
                                              else "consent_gone"))
    return redirect(url_for("dashboard.home") + "#consents", code=303)


MAX_RECORD_ID = 64


def proved_mailbox(amr: list[str]) -> bool:
    """Whether a session's sign-in was an e-mail code (``otp``, perhaps with a TOTP
    second factor), not an SSO or directory password with a TOTP (also ``otp``)."""
    return "otp" in amr and not {"fed", "pwd"} & set(amr)
JOIN_NOTICES = {"gone": "join_gone", "managed": "join_managed"}


@bp.post("/invitations/<record_id>/join")
def join(record_id: str) -> Response:
    """Join a company whose directory lists this account's address
    (:mod:`idp.accounts.invitations`). Only a session that proved the mailbox with an e-mail
    code may: an SSO or directory-password session has not."""
    found = _signed_in()
    if found is None:
        return _see_other("dashboard.home")
    row, account = found
    if not proved_mailbox(row.amr or []):
        notice = "join_needs_code"
    elif len(record_id) > MAX_RECORD_ID or not record_id.isalnum():
        notice = "join_gone"
    else:
        try:
            invitations.join(account, record_id)
            notice = "joined"
        except invitations.JoinRefused as exc:
            notice = JOIN_NOTICES.get(exc.reason, "join_gone")
    formstate.remember(row.id_hash, FormState(notice=notice))
    return _see_other("dashboard.home")


@bp.post("/profile")
def save_profile() -> Response:
    """Save the employee's own profile edit; errors come back on the form."""
    found = _signed_in()
    if found is None:
        return _see_other("dashboard.home")
    row, account = found
    outcome = profile.save(account, request.form)
    formstate.remember(
        row.id_hash, FormState(errors=outcome.errors, values=outcome.values,
                               notice=outcome.notice),
    )
    unit = request.form.get("unit_id") or None
    return redirect(url_for("dashboard.home", unit=unit) + "#profile", code=303)


@bp.post("/sign-out")
def sign_out() -> Response:
    """End this browser's session and show the signed-out page: at once, with the
    front-channel logout frames, when relying parties registered them; after the SAML
    Single Logout chain when SAML SPs took part in the session."""
    ended = sessions.end()
    return rp_logout.finish(
        ended, url_for("dashboard.signed_out"),
        lambda frames, next_url: Response(
            render_template("account/signed_out.html", logout_frames=frames,
                            continue_to=next_url), mimetype="text/html"),
    )


@bp.get("/signed-out")
def signed_out() -> Response:
    """"You are signed out", with a link to sign in again."""
    return Response(render_template("account/signed_out.html"), mimetype="text/html")
