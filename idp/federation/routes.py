"""The ``federation`` blueprint: upstream callbacks, SAML ACS and SP metadata,
the start of SSO for a pending interaction, and the linking code form."""

from __future__ import annotations

from flask import Blueprint, Response, request

from idp.errors import error_response
from idp.federation import flow, linking
from idp.interaction import pending as interaction
from idp.store import connectors_repo

bp = Blueprint("federation", __name__, url_prefix="/federation")


@bp.get("/<connector_id>/start")
def start(connector_id: str) -> Response:
    """Start SSO with this connector for the interaction ``?ix=`` of this browser."""
    ix = interaction.load(request.args.get("ix", ""))
    row = connectors_repo.get(connector_id)
    if ix is None or row is None:
        return error_response(400, "invalid_request", "Unknown or expired sign-in.")
    return flow.start_sso(ix, row)


@bp.get("/<connector_id>/callback")
def callback(connector_id: str) -> Response:
    return flow.oidc_callback(connector_id)


@bp.post("/<connector_id>/acs")
def acs(connector_id: str) -> Response:
    return flow.saml_acs(connector_id)


@bp.get("/<connector_id>/resume/<token>")
def resume(connector_id: str, token: str) -> Response:
    return flow.resume(connector_id, token)


@bp.get("/<connector_id>/metadata")
def metadata(connector_id: str) -> Response:
    """SAML 2.0 SP metadata of this connector (its entity id is this URL)."""
    from connectors.saml import SamlConnector
    from idp.federation.registry import connector_for

    row = connectors_repo.get(connector_id)
    connector = connector_for(row) if row is not None and row.kind == "saml" else None
    if not isinstance(connector, SamlConnector):
        return error_response(404, "not_found", "No such SAML connector.")
    xml = connector.sp_metadata()
    return Response(xml, mimetype="application/samlmetadata+xml")


@bp.post("/link/<token>")
def link(token: str) -> Response:
    return linking.submit(token)
