"""Helpers every login page uses: loading the interaction (or the "link expired"
page) and rendering a page with its form state."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Response, render_template, url_for
from flask_babel import lazy_gettext as _l

from idp.interaction import impersonation
from idp.interaction import pending as interaction
from idp.interaction.pending import Interaction
from idp.login.formstate import FormState
from idp.login.messages import message
from idp.web.redirects import redirect

# Unitgate's own employee dashboard (``idp.dashboard``) as an interaction's protocol.
OWN_PROTOCOL = "account"


class Expired(Exception):
    """The interaction does not exist, expired, or belongs to another browser."""


def load(interaction_id: str) -> Interaction:
    """The interaction of this browser; raises :class:`Expired` otherwise."""
    ix = interaction.load(interaction_id)
    if ix is None:
        raise Expired(interaction_id)
    return ix


def expired_page(interaction_id: str | None = None) -> Response:
    """The page of a login link that no longer works, always with a way on.

    A sign-in this browser finished a moment ago (the back button after consent,
    :func:`idp.interaction.pending.ended`): 200, "you are signed in", with a link to
    the merchant (the origin of its registered redirect URL) or to the dashboard.
    Anything else: 400, "this sign-in link has expired", with a link to the start
    page and the advice to start again at the shop."""
    ended = interaction.ended(interaction_id or "")
    status = 200 if ended is not None else 400
    return Response(
        render_template("login/expired.html", ended=ended, own=OWN_PROTOCOL),
        status=status, mimetype="text/html",
    )


def page(template: str, ix: Interaction, state: FormState, **context: Any) -> Response:
    """Render a login page; ``errors`` and ``notice`` arrive as translated text."""
    html = render_template(
        template,
        ix=ix,
        errors={name: message(key) for name, key in state.errors.items()},
        values=state.values,
        notice=message(state.notice),
        **context,
    )
    return Response(html, mimetype="text/html")


def acting(ix: Interaction) -> bool:
    """Whether this sign-in runs in a session that acts as the person
    (:mod:`idp.interaction.impersonation`). Such a sign-in may go on, but writes
    nothing that is the person's own, as the dashboard is read-only then: the wallet
    profile and the TOTP pages are refused (an authenticator set up by the actor
    would outlive the end; wrong codes would throttle the person's own), and a
    consent counts for this sign-in only (not stored), or it would be recorded as
    the person's own doing and outlive the end."""
    return impersonation.act_for_session(ix.session_id_hash) is not None


def acting_unit(ix: Interaction) -> str | None:
    """The unit an acting sign-in (:func:`acting`) is confined to: the impersonation's
    own, where the actor holds ``impersonate``; None when the session acts for nobody.
    A merchant never gets another of the person's units from an actor, whose rights
    were checked in this one only."""
    row = impersonation.act_for_session(ix.session_id_hash)
    return row.unit_id if row is not None else None


# Unitgate's own pages (the employee dashboard, the administration console) as the
# client of an OWN_PROTOCOL interaction.
OWN_CLIENT_ID = "unitgate-account"
OWN_CLIENT_NAME = _l("Unitgate account")
# The paths of Unitgate's own pages a sign-in may return to (:func:`safe_next`).
OWN_PAGES = ("/account", "/admin")
MAX_NEXT = 2000


def safe_next(value: str | None) -> str | None:
    """``value`` when it is a path of Unitgate's own pages on this origin (one of
    :data:`OWN_PAGES` or below, no scheme, no host, no ``//``, no backslash, no
    control characters or spaces), else None: where a sign-in may return to without
    an open redirect."""
    if not value or len(value) > MAX_NEXT:
        return None
    if any(ord(c) < 0x21 or ord(c) == 0x7F or c == "\\" for c in value):
        return None
    if not any(
        value == page or value.startswith((page + "/", page + "?")) for page in OWN_PAGES
    ):
        return None
    if "//" in value.split("?", 1)[0] or "/.." in value:
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return None
    return value


def own_interaction(params: dict[str, Any]) -> Interaction:
    """A new interaction of Unitgate's own pages (:data:`OWN_PROTOCOL`, nothing
    released to anyone), resumed by the dashboard's resume endpoint, with ``params``."""
    return interaction.start(
        protocol=OWN_PROTOCOL,
        client_id=OWN_CLIENT_ID,
        client_name=str(OWN_CLIENT_NAME),
        resume_endpoint="dashboard.resume",
        scopes=[],
        params=params,
    )


def start_own_login(next_path: str | None = None) -> Response:
    """Start the e-mail-code login for Unitgate's own pages (a fresh code, like
    everywhere), answered 303 to the login page; after it the dashboard's resume
    endpoint sends the browser to ``next_path`` when :func:`safe_next` accepts it."""
    back = safe_next(next_path)
    ix = own_interaction({"next": back} if back else {})
    return redirect(url_for("login.start", interaction_id=ix.id), code=303)
