"""The TOTP pages of the login interaction (:mod:`idp.factors.totp`).

``GET /interaction/<id>/totp`` asks for the code of the authenticator app;
``GET /interaction/<id>/totp/setup`` sets the app up (a new secret shown as an
``otpauth://`` URI and as base32 text) and is confirmed with a first valid code.
They are reached from :func:`idp.login.flow.finish_authentication` (first factor
held, no session yet) or from :func:`idp.login.flow.next_step` (a live session
whose sign-in had no second factor, or a merchant's step-up request, :mod:`idp.factors.acr`).
Every POST answers 303 (Post/Redirect/Get).
"""

from __future__ import annotations

import segno
from flask import Response, render_template, request, url_for
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from markupsafe import Markup, escape

from idp.factors import passkeys, totp
from idp.interaction import pending as interaction
from idp.interaction import sessions
from idp.interaction.pending import Interaction
from idp.login.blueprint import bp
from idp.login.common import OWN_PROTOCOL, load
from idp.login.flow import finish_authentication, next_step, see_other
from idp.login.formstate import FormState, recall, remember
from idp.login.messages import message as login_message
from idp.login.messages import wrong_code
from idp.login.second_factor import Subject
from idp.login.second_factor import subject as _subject

MESSAGES = {
    "totp_replayed": _l(
        "This code was already used. Wait for the next code in your app and enter it."
    ),
    "totp_throttled": _l(
        "Too many wrong codes for this account. Please wait 15 minutes and try again."
    ),
}


def _message(key: str | None) -> str:
    if not key:
        return ""
    if key.startswith("wrong:") and key[6:].isdigit():
        return wrong_code(int(key[6:]))
    if key.startswith("passkey_"):
        return login_message(key)
    return str(MESSAGES.get(key, ""))


def _render(template: str, ix: Interaction, state: FormState, status: int = 200,
            **context: object) -> Response:
    html = render_template(
        template, ix=ix, errors={k: _message(v) for k, v in state.errors.items()}, **context
    )
    resp = Response(html, status=status, mimetype="text/html")
    resp.headers["Cache-Control"] = "no-store"
    return resp


def qr_svg(uri: str, label: str) -> Markup:
    """``uri`` as a QR code (ISO/IEC 18004, error correction M), an inline SVG made
    on the server (no script, no external image: the page's CSP stays strict), with
    ``label`` as its accessible name."""
    svg = segno.make(uri, error="m", micro=False).svg_inline(
        scale=4, border=4, dark="#000", light="#fff", omitsize=True, svgclass="ug-qr"
    )
    # segno writes only module coordinates and the fixed attributes above (the URI's
    # text never appears in the SVG); the label is escaped.
    named = svg.replace("<svg ", f'<svg role="img" aria-label="{escape(label)}" ', 1)
    return Markup(named)  # noqa: S704


def way_out(ix: Interaction) -> tuple[str, str]:
    """(URL, link text) to leave the TOTP pages: the dashboard's two-step section for
    a set-up begun there, else the merchant's own address (registered, never taken
    from the request) or, without one (a sign-in to the dashboard), the start page."""
    if ix.protocol == OWN_PROTOCOL and ix.params.get("totp_setup") is True:
        back = url_for("dashboard.home") + "#two-step"
        return back, gettext("Cancel and go back to your account")
    home = interaction.merchant_home(ix.params)
    if home is not None:
        return home, gettext("Cancel and go back to %(merchant)s", merchant=ix.client_name)
    return url_for("landing.home"), gettext("Cancel and go to the Unitgate start page")


def _exhausted_page(ix: Interaction) -> Response:
    return _render("login/totp_exhausted.html", ix, FormState(), status=403, way_out=way_out(ix))


@bp.get("/<interaction_id>/totp", endpoint="totp")
def totp_code(interaction_id: str) -> Response:
    """The code form for an account with a confirmed credential; the set-up page when
    the account has none yet; the "too many wrong codes" page (403) once the
    interaction used up its tries."""
    ix = load(interaction_id)
    subject = _subject(ix)
    if subject is None:
        if totp.exhausted(ix.id):
            return _exhausted_page(ix)
        return next_step(ix)
    if not totp.enrolled(subject.account.id):
        return see_other("login.totp_setup", interaction_id=ix.id)
    return _render("login/totp_code.html", ix, recall(ix, "totp"),
                   units=totp.required_by_units(subject.account.id), way_out=way_out(ix),
                   passkey_offered=passkeys.has_any(subject.account.id))


@bp.post("/<interaction_id>/totp")
def submit_totp_code(interaction_id: str) -> Response:
    """Check the code; on success the sign-in goes on with ``amr`` ``otp`` + ``mfa``."""
    ix = load(interaction_id)
    subject = _subject(ix)
    if subject is None:
        return see_other("login.totp", interaction_id=ix.id)
    result = totp.verify(subject.account.id, ix.id, request.form.get("code", "")[:100])
    return _after(ix, subject, result, "login.totp")


@bp.get("/<interaction_id>/totp/setup")
def totp_setup(interaction_id: str) -> Response:
    """Set up the authenticator app: the ``otpauth://`` URI and the secret for manual
    entry; it counts only after a first valid code."""
    ix = load(interaction_id)
    subject = _subject(ix)
    if subject is None:
        if totp.exhausted(ix.id):
            return _exhausted_page(ix)
        return next_step(ix)
    secret = totp.begin_enrolment(subject.account)
    if secret is None:
        return see_other("login.totp", interaction_id=ix.id)
    uri = totp.provisioning_uri(secret, subject.account.email or subject.account.name
                                or subject.account.id)
    return _render(
        "login/totp_setup.html", ix, recall(ix, "totp"),
        uri=uri,
        qr=qr_svg(uri, gettext("QR code to scan with your authenticator app")),
        way_out=way_out(ix),
        secret=" ".join(secret[i:i + 4] for i in range(0, len(secret), 4)),
        units=totp.required_by_units(subject.account.id),
        passkey_offered=passkeys.has_any(subject.account.id),
    )


@bp.post("/<interaction_id>/totp/setup")
def submit_totp_setup(interaction_id: str) -> Response:
    """Confirm the set-up with the first code; it also counts as this sign-in's code."""
    ix = load(interaction_id)
    subject = _subject(ix)
    if subject is None:
        return see_other("login.totp_setup", interaction_id=ix.id)
    code = request.form.get("code", "")[:100]
    result = totp.verify(subject.account.id, ix.id, code, confirm=True)
    if result.outcome is totp.Outcome.NOT_ENROLLED and totp.enrolled(subject.account.id):
        return see_other("login.totp", interaction_id=ix.id)
    return _after(ix, subject, result, "login.totp_setup")


def _after(ix: Interaction, subject: Subject, result: totp.Result, again: str) -> Response:
    if result.outcome is totp.Outcome.OK:
        if subject.held and totp.release(ix.id) is None:
            return next_step(ix)  # a parallel request finished this sign-in already
        return finish_authentication(
            ix, subject.account, totp.with_totp(subject.amr), totp.ACR_MFA
        )
    if result.outcome is totp.Outcome.EXHAUSTED:
        totp.release(ix.id)
        if not subject.held:
            ix.account_id = ix.auth_time = ix.session_id_hash = None
            interaction.save(ix)
            sessions.end(page=False)
        return see_other("login.totp", interaction_id=ix.id)
    key = {
        totp.Outcome.WRONG: f"wrong:{result.tries_left}",
        totp.Outcome.REPLAYED: "totp_replayed",
        totp.Outcome.THROTTLED: "totp_throttled",
    }.get(result.outcome)
    if key is not None:
        remember(ix, "totp", FormState(errors={"code": key}))
    return see_other(again, interaction_id=ix.id)
