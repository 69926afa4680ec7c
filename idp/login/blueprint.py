"""The ``login`` blueprint: every page of the login interaction lives under
``/interaction/<interaction_id>/...``."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("login", __name__, url_prefix="/interaction")
