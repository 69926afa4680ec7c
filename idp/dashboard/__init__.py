"""The employee dashboard ("account" pages, blueprint ``dashboard`` under
``/account``): who the employee is, their companies, their sign-ins at merchants,
the consents they gave (with a Withdraw button) and the profile fields they may edit.

Signing in to the dashboard is the usual e-mail-code login: ``GET /account`` without
a live session starts an interaction with ``protocol="account"``
(:data:`idp.login.flow.OWN_PROTOCOL`), which releases nothing to any merchant and so
skips unit choice and consent.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Flask

from idp.i18n import format_when


def account_datetime(value: datetime) -> str:
    """A stored UTC time as a date and time for the reader (:func:`idp.i18n.format_when`:
    language, time zone, the zone shown)."""
    return format_when(_utc(value))


def account_date(value: datetime) -> str:
    """A stored UTC time as a date for the reader (in the reader's time zone)."""
    return format_when(_utc(value), "date")


def account_iso(value: datetime) -> str:
    """A stored time as an RFC 3339 UTC timestamp (for ``<time datetime>``)."""
    return _utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def _utc(value: datetime) -> datetime:
    """Naive times from the database are UTC (SQLite drops the zone)."""
    return value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)


def setup_dashboard(app: Flask) -> None:
    """Register the ``dashboard`` blueprint (with the start page at ``/``) and its
    date filters."""
    from idp.dashboard import approvals as _approvals  # noqa: F401  (issue 17)
    from idp.dashboard import (  # noqa: F401  (routes register on bp)
        views,
        views_passkeys,
        views_password,
        views_sessions,
        views_totp,
    )
    from idp.dashboard.blueprint import bp
    from idp.dashboard.impersonation import setup_impersonation
    from idp.dashboard.landing import bp as landing

    app.register_blueprint(bp)
    app.register_blueprint(landing)
    app.add_template_filter(account_datetime, "account_datetime")
    app.add_template_filter(account_date, "account_date")
    app.add_template_filter(account_iso, "account_iso")
    setup_impersonation(app)
