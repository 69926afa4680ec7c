"""The administration API under ``/api/v1`` (docs/admin-api.md).

JSON in, JSON out, problem details (RFC 9457) for every refusal, an OpenAPI 3.1
document generated from the endpoints' own models, bearer tokens of admin clients
or the console's session. The endpoints are thin: they validate, ask
:func:`idp.rights.require`, and call the same services the CLI and the console call.
"""

from __future__ import annotations

from flask import Blueprint, Flask, Response
from flask_wtf.csrf import CSRFProtect

from idp.api.problems import Problem, response

bp = Blueprint("api", __name__, url_prefix="/api/v1")


@bp.errorhandler(Problem)
def _problem(exc: Problem) -> Response:
    return response(exc)


def setup_api(app: Flask, csrf: CSRFProtect) -> None:
    """Mount the API: its routes (imported here, so that every endpoint is declared
    before the blueprint is registered), CSRF exemption (the caller module checks
    the header for session writes itself) and the blueprint."""
    from idp.api import (  # noqa: F401 - each module declares its endpoints
        access_csv,
        accesses,
        audit_log,
        contacts,
        customers,
        impersonation,
        meta,
        staff,
    )
    _more_routes()
    from idp.api import budgets as _budgets  # noqa: F401 - issue 17
    from idp.api import purchases as _purchases  # noqa: F401 - issue 17
    from idp.api import unit_purchases as _unit_purchases  # noqa: F401 - issue 17
    from idp.api.endpoint import segment_converter

    app.url_map.converters["segment"] = segment_converter()
    csrf.exempt(bp)
    if "api" not in app.blueprints:
        app.register_blueprint(bp)


def _more_routes() -> None:
    """Endpoint modules added after the list in :func:`setup_api` (imported there)."""
    from idp.api import (
        approval_policies,  # noqa: F401 - issue 17: approval policies
        branding,  # noqa: F401 - issue 16 item 5: logos and colours
        connector_links,  # noqa: F401 - issue 18: links without an address
        webhooks,  # noqa: F401 - declares the webhook and export endpoints
    )
