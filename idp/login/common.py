"""Helpers every login page uses: loading the interaction (or the "link expired"
page) and rendering a page with its form state."""

from __future__ import annotations

from typing import Any

from flask import Response, render_template

from idp.interaction import pending as interaction
from idp.interaction.pending import Interaction
from idp.login.formstate import FormState
from idp.login.messages import message


class Expired(Exception):
    """The interaction does not exist, expired, or belongs to another browser."""


def load(interaction_id: str) -> Interaction:
    """The interaction of this browser; raises :class:`Expired` otherwise."""
    ix = interaction.load(interaction_id)
    if ix is None:
        raise Expired(interaction_id)
    return ix


def expired_page() -> Response:
    """400 with a page that says the sign-in link expired and what to do."""
    return Response(render_template("login/expired.html"), status=400, mimetype="text/html")


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
