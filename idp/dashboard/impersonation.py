"""The browser side of impersonation (``idp.interaction.impersonation``): the time
limit checked before every request, the banner on every page (``templates/base.html``),
the banner's "End now" button, and a minimal form action to start one.

The administration console comes later; until then an administrator starts an
impersonation with ``POST /api/v1/units/{unit_id}/accesses/{access_id}/impersonation``
(session and ``X-CSRF-Token``) or with the form action :func:`start` here.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, abort, has_request_context, request, url_for

from idp.dashboard.blueprint import bp
from idp.interaction import impersonation, sessions, signed_in
from idp.rights import ImpersonationRefused, NotPermitted, person
from idp.web.redirects import redirect

MAX_FIELD = 64
log = logging.getLogger(__name__)


def banner() -> dict[str, Any]:
    """The templates' ``impersonation``: None, or the acting and the target's names
    and the end time of this browser's impersonation."""
    found = None
    if has_request_context():
        try:
            found = impersonation.acting_as()
        except Exception:  # an error page while the database is down: no banner
            log.debug("no impersonation banner", exc_info=True)
    if found is None:
        return {"impersonation": None}
    row, actor, target, unit = found
    return {"impersonation": {
        "actor": actor, "target": target, "unit": unit, "ends_at": row.ends_at,
    }}


# Endpoints that never act on the browser's session: relying parties' servers call
# them (the token endpoint, userinfo, discovery) and a browser's cookie, if any, is
# irrelevant there; a token issued meanwhile is checked against the impersonation by
# itself (``idp.oidc.grants``). The check would cost them a session read.
SESSIONLESS = frozenset({"static", "oauth_token", "userinfo", "discovery"})


def _enforce() -> None:
    if request.endpoint != "static" and request.blueprint not in SESSIONLESS:
        impersonation.enforce()


def setup_impersonation(app: Flask) -> None:
    """The time limit before every request and the banner in every template."""
    app.before_request(_enforce)
    app.context_processor(banner)


# What an acting session may still post on the dashboard: the end and signing out.
# Everything else there changes the person's own account (profile, consents, TOTP,
# invitations) and is refused while someone acts as them: it would be recorded as
# the person's own doing, and a factor enrolled by the actor would outlive the end.
ACTING_MAY_POST = frozenset({"dashboard.end_impersonation", "dashboard.sign_out"})


@bp.before_request
def _read_only_while_acting() -> None:
    if request.method in ("GET", "HEAD") or request.endpoint in ACTING_MAY_POST:
        return
    row = sessions.current()
    if row is not None and row.impersonation_id is not None:
        abort(403)


@bp.post("/impersonation/end")
def end_impersonation() -> Response:
    """The banner's "End now": back to the actor's own session (303 to the dashboard,
    which is then the actor's)."""
    impersonation.end_current()
    return redirect(url_for("dashboard.home"), code=303)


@bp.post("/impersonation/start")
def start_impersonation() -> Response:
    """A form action to start an impersonation: ``unit_id``, ``access_id``,
    ``reason`` and optionally ``minutes`` (CSRF token required, like every form).
    303 to the dashboard, now the target's; 404 for an access the person cannot see,
    403 when refused, 400 for a bad reason or time limit."""
    login = signed_in.live_login()
    if login is None:
        abort(401)
    _, account = login
    unit_id = request.form.get("unit_id", "")[:MAX_FIELD]
    access_id = request.form.get("access_id", "")[:MAX_FIELD]
    minutes_text = request.form.get("minutes", "").strip()
    if minutes_text and not minutes_text.isdigit():
        abort(400)
    minutes = int(minutes_text[:4]) if minutes_text else None
    try:
        started = impersonation.start(
            person(account.id), unit_id, access_id, request.form.get("reason", ""), minutes
        )
    except ImpersonationRefused:
        abort(403)
    except NotPermitted as exc:
        abort(404 if exc.foreign else 403)
    except impersonation.Refused as exc:
        abort(404 if exc.code == "not_found" else 400 if exc.code.startswith("invalid") else 409)
    return redirect(started.redirect_to, code=303)
