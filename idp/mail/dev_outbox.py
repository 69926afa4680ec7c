"""``GET /dev/outbox``: the newest outbox messages with their text bodies, so a
developer without a mail server can read one-time codes. The app registers this
blueprint only when ``IDP_DEV_MODE`` is on; it never exists in production."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template

from idp.mail.outbox import open_body
from idp.store import outbox_repo

bp = Blueprint("dev_outbox", __name__, url_prefix="/dev")


@bp.get("/outbox")
def index() -> str:
    """The 50 newest messages, newest first, with status, attempts and text body."""
    rows: list[dict[str, Any]] = []
    for message in outbox_repo.recent(50):
        try:
            body = open_body(message)
        except Exception:
            body = None
        payload = message.payload or {}
        rows.append(
            {
                "message": message,
                "to": payload.get("to", ""),
                "subject": payload.get("subject", ""),
                "text": (body or {}).get("text"),
            }
        )
    return render_template("mail/dev_outbox.html", rows=rows)
