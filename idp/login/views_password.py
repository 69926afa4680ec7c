"""The password page of the login interaction (issue 13, item 1), beside the
e-mail-code page: ``/interaction/<id>/sign-in-password`` asks for the e-mail address
(``autocomplete="username"``) and the password (``autocomplete="current-password"``)
and hands both to :func:`idp.factors.passwords.check_login`.

The e-mail page links here ("Sign in with a password") only while some unit allows
passwords; this page links back ("Sign in with a code"). Every failure (unknown
address, no password, no unit allowing passwords, wrong password, lock-out) gives the
same message after the same work, so the page does not tell whether an address has
an account or a password. Success finishes the interaction with ``amr=["pwd"]``
(:func:`idp.login.flow.finish_authentication`: a TOTP step-up applies as for codes).
An address in a domain that requires SSO goes to its upstream IdP (or gets the
"sign-in refused" page), exactly as on the code page: a password never bypasses
company SSO.
POSTs carry the app-wide CSRF token and answer 303 (Post/Redirect/Get).
"""

from __future__ import annotations

from flask import Flask, Response, render_template, request
from flask_babel import lazy_gettext as _l

from idp.accounts import lifecycle as accounts
from idp.factors import passwords
from idp.interaction.pending import Interaction
from idp.login.blueprint import bp
from idp.login.common import load
from idp.login.email_signin import sso_instead_of_code
from idp.login.flow import finish_authentication, next_step, see_other
from idp.login.formstate import FormState, recall, remember

PAGE = "password"
MESSAGES = {
    "failed": _l(
        "The e-mail address or the password is not right, or this account cannot sign "
        "in with a password. You can always sign in with a code."
    ),
    "throttled": _l("Too many attempts. Please wait 15 minutes, or sign in with a code."),
    "email_invalid": _l("Enter a valid e-mail address, like name@company.com."),
}


def _render(ix: object, state: FormState) -> Response:
    html = render_template(
        "login/password.html", ix=ix,
        errors={k: str(MESSAGES.get(v, MESSAGES["failed"])) for k, v in state.errors.items()},
        values=state.values,
    )
    return Response(html, mimetype="text/html")


@bp.get("/<interaction_id>/sign-in-password")
def password_page(interaction_id: str) -> Response:
    """The form: e-mail address (prefilled) and password."""
    ix = load(interaction_id)
    if ix.authenticated:
        return next_step(ix)
    state = recall(ix, PAGE)
    state.values.setdefault("email", ix.email or ix.login_hint or "")
    return _render(ix, state)


def _again(ix: Interaction, error: str, email: str) -> Response:
    remember(ix, PAGE, FormState(errors={"password": error}, values={"email": email}))
    return see_other("login.password_page", interaction_id=ix.id)


@bp.post("/<interaction_id>/sign-in-password")
def submit_password_page(interaction_id: str) -> Response:
    """Check the password; on success the interaction continues (TOTP when owed,
    profile, unit, consent, back to the merchant) with ``amr=["pwd"]``."""
    ix = load(interaction_id)
    if ix.authenticated:
        return next_step(ix)
    raw = request.form.get("email", "")[:1000]
    password = request.form.get("password", "")[:passwords.MAX_INPUT]
    try:
        email = accounts.normalise_email(raw)
    except accounts.InvalidEmail:
        return _again(ix, "email_invalid", raw.strip()[:320])
    sso = sso_instead_of_code(ix, email)  # a require_sso domain goes to its IdP, always
    if sso is not None:
        return sso
    check = passwords.check_login(email, password, request.remote_addr or "")
    if check.throttled:
        return _again(ix, "throttled", email)
    if check.account is None:
        return _again(ix, "failed", email)
    return finish_authentication(ix, check.account, amr=list(passwords.AMR))


def setup_password_login(app: Flask) -> None:
    """The ``passwords_offered()`` template function (the e-mail page's link)."""
    app.add_template_global(passwords.offered, "passwords_offered")
