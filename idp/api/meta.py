"""The API's own description and the caller's view of themselves."""

from __future__ import annotations

from typing import Literal

from flask import Response, json
from pydantic import BaseModel, Field

from idp.api import bp
from idp.api.endpoint import Call, endpoint
from idp.api.openapi import document
from idp.rights import catalogue
from idp.rights.authorization import visible_customers
from idp.services import settings


@bp.get("/openapi.json")
def openapi_json() -> Response:
    """The OpenAPI 3.1 document (public: it describes, it grants nothing)."""
    resp = Response(json.dumps(document(settings().issuer)), mimetype="application/json")
    resp.headers["Cache-Control"] = "public, max-age=300"
    return resp


class Me(BaseModel):
    """The caller as the API sees it."""

    kind: Literal["account", "staff", "client", "system"]
    account_id: str | None = None
    client_id: str | None = None
    customers: list[str] | None = Field(
        description="Customer ids the caller may work in; null: all of them"
    )


class Permission(BaseModel):
    name: str
    description: str
    roles: list[str] = Field(description="Built-in roles that grant it")


@endpoint(bp, "GET", "/me", summary="Who am I", tag="meta", response=Me)
def get_me(call: Call) -> Me:
    """The authenticated caller and the customers it may work in."""
    visible = visible_customers(call.actor)
    return Me(
        kind=call.actor.kind,
        account_id=call.actor.account_id,
        client_id=call.actor.client_id,
        customers=sorted(visible) if visible is not None else None,
    )


@endpoint(
    bp, "GET", "/permissions", summary="The permission catalogue", tag="meta",
    response=list[Permission],
)
def list_permissions(call: Call) -> list[Permission]:
    """Every permission, what it allows, and the built-in roles that grant it."""
    return [Permission(**row) for row in catalogue.describe()]
