"""Login interaction pages: e-mail, one-time code, wallet profile, unit choice and
consent (``/interaction/<interaction_id>/...``, blueprint ``login``), and the
invitation pages that lead into them (``/invitation/<token>``, blueprint
``invitation``).

The protocol side sends the browser to ``url_for("login.start",
interaction_id=ix.id)``; other login methods end with
:func:`idp.login.flow.finish_authentication`.
"""

from __future__ import annotations

from flask import Flask


def setup_login(app: Flask) -> None:
    """Register the login blueprint (with its "sign-in link expired" page)."""
    from idp.login import (  # noqa: F401  (routes register on bp)
        views_code,
        views_passkey,
        views_totp,
        views_wallet,
    )
    from idp.login.blueprint import bp
    from idp.login.views_invitation import bp as invitation_bp
    from idp.login.views_password import setup_password_login

    setup_password_login(app)
    app.register_blueprint(bp)
    app.register_blueprint(invitation_bp)
