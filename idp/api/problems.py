"""Errors of the administration API as ``application/problem+json`` (RFC 9457).

Every refusal is a :class:`Problem`: an HTTP status, a stable machine-readable
``code`` (also the last part of the ``type`` URI, ``urn:unitgate:problem:<code>``),
a human-readable ``detail``, and for invalid input a list of ``errors``, each with a
JSON Pointer (RFC 6901) into the request (``/body/email``, ``/query/limit``). The
document carries the request id the log shows, never a stack trace.
"""

from __future__ import annotations

from flask import Response
from pydantic import BaseModel, Field

from idp.errors import PROBLEM_MEDIA_TYPE as MEDIA_TYPE  # noqa: F401 - re-exported
from idp.errors import problem_response


class FieldError(BaseModel):
    """One invalid part of the request."""

    pointer: str = Field(description="JSON Pointer into the request: /body/..., /query/...")
    detail: str


class ProblemDocument(BaseModel):
    """An RFC 9457 problem details object with Unitgate's extension members."""

    type: str = Field(description="urn:unitgate:problem:<code>")
    title: str
    status: int
    detail: str
    code: str = Field(description="Stable machine-readable reason")
    instance: str | None = None
    request_id: str | None = None
    errors: list[FieldError] | None = None


class Problem(Exception):
    """A refusal with its status, code and detail (see the module)."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}


def response(problem: Problem) -> Response:
    """The problem as a response (:func:`idp.errors.problem_response`)."""
    return problem_response(
        problem.status, problem.code, problem.detail, problem.errors, problem.headers
    )


def not_found(what: str = "resource") -> Problem:
    return Problem(404, "not_found", f"No such {what}, or not one you may see.")


def forbidden(permission: str) -> Problem:
    return Problem(403, "forbidden", f"This needs the permission {permission!r}.")


def conflict(code: str, detail: str) -> Problem:
    return Problem(409, code, detail)


def invalid(code: str, detail: str, pointer: str | None = None) -> Problem:
    """A 422 for input that is well-formed but refused by a rule."""
    errors = [{"pointer": pointer, "detail": detail}] if pointer else None
    return Problem(422, code, detail, errors=errors)
