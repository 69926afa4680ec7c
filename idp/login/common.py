"""Helpers every login page uses: loading the interaction (or the "link expired"
page) and rendering a page with its form state."""

from __future__ import annotations

from typing import Any

from flask import Response, render_template

from idp.interaction import impersonation
from idp.interaction import pending as interaction
from idp.interaction.pending import Interaction
from idp.login.formstate import FormState
from idp.login.messages import message

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
