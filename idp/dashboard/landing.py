"""The start page at ``/`` (blueprint ``landing``) for people who arrive without a
merchant: what Unitgate is, a way to the employee dashboard, and, for
administrators, the console when this deployment has one. Also ``/favicon.ico``
(browsers ask for it on their own), answered with the SVG icon."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, render_template, send_from_directory

from idp.interaction import sessions

bp = Blueprint("landing", __name__)

# The administration console's endpoint, when one is registered (issue 16, item 2).
CONSOLE_ENDPOINT = "console.home"


@bp.get("/")
def home() -> Response:
    """The start page; it says "Go to your account" to a browser with a live session."""
    html = render_template(
        "landing.html",
        signed_in=sessions.current() is not None,
        console=CONSOLE_ENDPOINT in current_app.view_functions,
        console_endpoint=CONSOLE_ENDPOINT,
    )
    return Response(html, mimetype="text/html")


@bp.get("/favicon.ico")
def favicon() -> Response:
    """The SVG favicon (``static/favicon.svg``) as ``image/svg+xml``."""
    static = current_app.static_folder or ""
    resp = send_from_directory(static, "favicon.svg", mimetype="image/svg+xml", max_age=86400)
    return resp
