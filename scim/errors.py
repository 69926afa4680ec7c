"""SCIM error responses (RFC 7644 §3.12): the Error schema, ``status`` as a string,
``scimType`` where the RFC defines one, ``application/scim+json``.

Domain errors of :mod:`idp.provisioning.service` map to statuses here, so the domain never
learns SCIM: not found 404, uniqueness 409, bad value 400 ``invalidValue``,
owned field 400 ``mutability``, stale ``If-Match`` 412.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Response
from scim2_models import Error

from idp.provisioning import service as provisioning

SCIM_JSON = "application/scim+json"


class ScimError(Exception):
    """An error to answer with the SCIM error schema."""

    def __init__(self, status: int, detail: str, scim_type: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.scim_type = scim_type
        self.headers = dict(headers or {})

    def document(self) -> dict[str, Any]:
        return Error(status=self.status, scim_type=self.scim_type, detail=self.detail).model_dump()


def bad_request(detail: str, scim_type: str = "invalidValue") -> ScimError:
    return ScimError(400, detail, scim_type)


def from_domain(exc: provisioning.ProvisioningError) -> ScimError:
    """The SCIM error for a domain error."""
    detail = str(exc)
    if isinstance(exc, provisioning.NotFound):
        return ScimError(404, detail)
    if isinstance(exc, provisioning.Conflict):
        return ScimError(409, detail, "uniqueness")
    if isinstance(exc, provisioning.PreconditionFailed):
        return ScimError(412, detail)
    if isinstance(exc, provisioning.FieldOwned):
        return ScimError(400, detail, "mutability")
    if isinstance(exc, provisioning.Busy):
        return ScimError(503, detail)
    return ScimError(400, detail, "invalidValue")


def scim_json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A SCIM JSON response that is never cached."""
    resp = Response(json.dumps(body, ensure_ascii=False), status=status, mimetype=SCIM_JSON)
    resp.headers["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        resp.headers[name] = value
    return resp


def error_response(err: ScimError) -> Response:
    headers = dict(err.headers)
    if err.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="scim"'
    if err.status == 503:
        headers["Retry-After"] = "2"
    return scim_json(err.document(), err.status, headers)
