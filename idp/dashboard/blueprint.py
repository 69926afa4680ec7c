"""The ``dashboard`` blueprint: every page of the employee's account under ``/account``."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("dashboard", __name__, url_prefix="/account")
