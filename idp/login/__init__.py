"""Login interaction pages: email, one-time code, wallet profile, consent."""

from __future__ import annotations

from flask import Flask


def setup_login(app: Flask) -> None:
    """Register the login blueprints."""
