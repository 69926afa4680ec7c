"""The "company password" page of the login interaction (LDAP bind login).

``/interaction/<id>/password`` asks for the work e-mail address and the directory
password and hands both to :func:`idp.login.ldap_bind.authenticate`. The page is offered
(a link on the e-mail page) only when some unit enabled LDAP login
(``idp ldap add ... --login``).

Every failure (unknown address, account without LDAP login, wrong password,
throttled account) gives the same message, so the page does not tell whether an
address has an account. Attempts are limited per client address as well as per
account. POSTs answer 303 (Post/Redirect/Get); an unreachable directory answers
503 (fail closed).
"""

from __future__ import annotations

from flask import Blueprint, Flask, Response, request
from flask_babel import lazy_gettext as _l

from idp.accounts import lifecycle as accounts
from idp.errors import error_response
from idp.interaction.pending import Interaction
from idp.login.common import Expired, expired_page, load
from idp.login.flow import next_step, see_other
from idp.login.formstate import FormState, recall, remember
from idp.process_cache import ProcessCache
from idp.services import ephemeral
from idp.store import ldap_repo
from idp.store.models import LdapDirectory
from idp.web import client_network

bp = Blueprint("ldap_login", __name__, url_prefix="/interaction")

PAGE = "ldap_password"
MAX_ATTEMPTS_PER_IP = 30
IP_WINDOW_SECONDS = 15 * 60
MAX_PASSWORD_INPUT = 1100  # longer input is cut and then fails like a wrong password

MESSAGES = {
    "failed": _l("The e-mail address or the password is not right."),
    "throttled": _l("Too many attempts. Please wait 15 minutes and try again."),
    "email_invalid": _l("Enter a valid e-mail address, like name@company.com."),
}


@bp.errorhandler(Expired)
def _expired(exc: Expired) -> Response:
    return expired_page(str(exc.args[0]) if exc.args else None)


def _render(ix: object, state: FormState) -> Response:
    from flask import render_template

    html = render_template(
        "login/ldap_password.html",
        ix=ix,
        errors={k: str(MESSAGES.get(v, MESSAGES["failed"])) for k, v in state.errors.items()},
        values=state.values,
    )
    return Response(html, mimetype="text/html")


@bp.get("/<interaction_id>/password")
def password_form(interaction_id: str) -> Response:
    """The form: work e-mail address (prefilled) and company password."""
    ix = load(interaction_id)
    if ix.authenticated:
        return next_step(ix)
    state = recall(ix, PAGE)
    state.values.setdefault("email", ix.email or ix.login_hint or "")
    return _render(ix, state)


def _again(ix: Interaction, error: str, email: str) -> Response:
    remember(ix, PAGE, FormState(errors={"password": error}, values={"email": email}))
    return see_other("ldap_login.password_form", interaction_id=ix.id)


@bp.post("/<interaction_id>/password")
def submit_password(interaction_id: str) -> Response:
    """Check the password against the account's directory; on success the interaction
    continues (consent, then back to the merchant) with ``amr=["pwd"]``."""
    ix = load(interaction_id)
    if ix.authenticated:
        return next_step(ix)
    raw = request.form.get("email", "")[:1000]
    password = request.form.get("password", "")[:MAX_PASSWORD_INPUT]
    ip = client_network.current()
    if ephemeral().incr(f"ldap-login-ip:{ip}", IP_WINDOW_SECONDS) > MAX_ATTEMPTS_PER_IP:
        return _again(ix, "throttled", raw.strip()[:320])
    try:
        email = accounts.normalise_email(raw)
    except accounts.InvalidEmail:
        return _again(ix, "email_invalid", raw.strip()[:320])
    account = accounts.by_email(email)
    if account is None:
        return _again(ix, "failed", email)
    from idp.login import (
        ldap_bind as login_ldap,  # ldap3 is loaded on first use, not at every worker start
    )

    try:
        done = login_ldap.authenticate(ix, account, password)
    except login_ldap.LdapLoginUnavailable:
        return error_response(
            503, "temporarily_unavailable",
            "Your company directory cannot be reached right now. Please try again "
            "later, or sign in with an e-mail code.",
        )
    if done is None:
        return _again(ix, "failed", email)
    return done


# Asked by every e-mail page; a directory switched on or off shows (or hides) the
# link here at once and on other nodes within 2 s.
OFFERED: ProcessCache[bool] = ProcessCache("ldap_login_offered", (LdapDirectory,), 1)


def ldap_login_offered() -> bool:
    """True when at least one unit lets its members sign in with their directory
    password (the e-mail page then links to this page)."""
    return bool(OFFERED.get_or_load("any", ldap_repo.any_login_enabled))


def setup_ldap_login(app: Flask) -> None:
    """Register the page and the ``ldap_login_offered()`` template function."""
    app.register_blueprint(bp)
    app.add_template_global(ldap_login_offered)
