"""Declaring an administration API endpoint: one decorator that routes it, checks
the caller, parses and validates its input, runs it, and serialises its answer,
from the same pydantic models that :mod:`idp.api.openapi` turns into the OpenAPI
document. What an endpoint declares is therefore what it does.

Input handling, the same for every endpoint:

* path parameters are visible ASCII strings of at most 64 characters (ids, slugs),
  else 404;
* the query string is validated against the endpoint's ``query`` model (unknown
  parameters are refused, 422 with a pointer per problem); a NUL character in a
  query or body string is a 422;
* a body is accepted only where a ``body`` model is declared, only as
  ``application/json`` (else 415), parsed with the bounded parser
  (:mod:`idp.web.json_limits`; malformed: 400) and validated (422);
* writes honour ``Idempotency-Key`` (:mod:`idp.api.idempotency`).

Authorisation is not implicit: an endpoint under ``/units/{unit_id}`` declares
``permission`` and is checked by :func:`idp.rights.require` before it runs (a unit
the caller holds nothing in is a 404, a missing permission a 403); other endpoints
call :meth:`Call.require` with the unit of the resource they touch.
"""

from __future__ import annotations

import io
import re
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from flask import Blueprint, Response, json, request
from pydantic import BaseModel, ValidationError
from werkzeug.routing import BaseConverter

from idp.api import caller, idempotency
from idp.api.problems import Problem, forbidden, not_found
from idp.rights import Actor, NotPermitted, require
from idp.web.json_limits import loads

MAX_PATH_PARAM = 64
# Ids and slugs are visible ASCII; anything else (a NUL byte, which PostgreSQL
# refuses in text, control characters, non-ASCII) names nothing.
PATH_PARAM_RE = re.compile(r"^[\x21-\x7e]+$")
Handler = Callable[..., Any]
F = TypeVar("F", bound=Handler)


@dataclass
class Call:
    """What a handler gets: the actor, the validated query and body."""

    actor: Actor
    query: Any = None
    body: Any = None

    def require(self, permission: str, unit_id: str | None) -> None:
        """:func:`idp.rights.require`, answered as the API answers refusals: 404
        when the actor holds nothing in the unit, 403 otherwise."""
        authorize(self.actor, permission, unit_id)


def authorize(actor: Actor, permission: str, unit_id: str | None, what: str = "unit") -> None:
    """The one authorisation check, as an API answer (see :meth:`Call.require`)."""
    try:
        require(actor, permission, unit_id)
    except NotPermitted as exc:
        if exc.foreign:
            raise not_found(what) from exc
        raise forbidden(permission) from exc


@dataclass
class Endpoint:
    """An endpoint as declared: enough to route it and to document it."""

    method: str
    path: str  # OpenAPI form, relative to /api/v1: /units/{unit_id}/accesses
    handler: Handler
    summary: str
    tag: str
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    response: Any = None  # a model, list[model] or None (204)
    status: int = 200
    permission: str | None = None
    description: str = ""
    operation_id: str = ""
    extra_statuses: tuple[int, ...] = field(default=())
    # A body that is not JSON (``text/csv``): the handler reads ``call.body``, a
    # binary stream, itself; the media type of an answer that is not JSON (the
    # handler returns a :class:`flask.Response`).
    body_media: str | None = None
    response_media: str | None = None
    # The most bytes such a body may have (read from the settings per request).
    body_limit: Callable[[], int] | None = None


REGISTRY: list[Endpoint] = []


def _flask_rule(path: str) -> str:
    return re.sub(r"{([a-z_]+)}", r"<segment:\1>", path)


def _is_param(segment: str) -> bool:
    return segment.startswith("{")


def reserved_segments() -> frozenset[str]:
    """Static path segments that sit where a sibling path has a parameter
    (``bulk`` in ``/units/{unit_id}/accesses/bulk`` beside ``.../{access_id}``): a
    parameter never takes such a value, so each request matches one rule only, and
    405 answers and ``OPTIONS`` list that rule's methods alone."""
    paths = [ep.path.strip("/").split("/") for ep in REGISTRY]
    out: set[str] = set()
    for a in paths:
        for b in paths:
            if len(a) != len(b):
                continue
            for i, (x, y) in enumerate(zip(a, b, strict=True)):
                same_before = all(
                    p == q or (_is_param(p) and _is_param(q))
                    for p, q in zip(a[:i], b[:i], strict=True)
                )
                if same_before and not _is_param(x) and _is_param(y):
                    out.add(x)
    return frozenset(out)


class SegmentConverter(BaseConverter):
    """One path segment that is not a reserved static segment (see
    :func:`reserved_segments`): :func:`segment_converter` builds it when the API is
    mounted, its regular expression refusing those words."""

    regex = "[^/]+"


def segment_converter() -> type[BaseConverter]:
    """A :class:`SegmentConverter` whose pattern leaves out the reserved segments."""
    words = "|".join(re.escape(word) for word in sorted(reserved_segments()))
    pattern = f"(?!(?:{words})$)[^/]+" if words else "[^/]+"
    return type("ApiSegment", (SegmentConverter,), {"regex": pattern})


def _pointer(where: str, loc: tuple[Any, ...]) -> str:
    return "/" + "/".join([where, *(str(part) for part in loc)])


def _invalid(exc: ValidationError, where: str) -> Problem:
    """A 422 naming each invalid part of the ``where`` (query, body) by pointer."""
    errors = [
        {"pointer": _pointer(where, tuple(err["loc"])), "detail": err["msg"]}
        for err in exc.errors()[:50]
    ]
    first = errors[0]["detail"] if errors else "invalid"
    return Problem(422, "invalid_input", f"The {where} is invalid: {first}", errors=errors)


def _validate(model: type[BaseModel], data: Any, where: str) -> BaseModel:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _invalid(exc, where) from exc


def _validate_json(model: type[BaseModel], raw: bytes) -> BaseModel:
    """The body validated in pydantic's strict JSON mode: JSON types as the document
    says (``0`` is no boolean, ``"5"`` no integer), date-times as RFC 3339 text."""
    try:
        return model.model_validate_json(raw, strict=True)
    except ValidationError as exc:
        raise _invalid(exc, "body") from exc


def _list_fields(model: type[BaseModel]) -> set[str]:
    out = set()
    for name, info in model.model_fields.items():
        annotation = info.annotation
        args = typing.get_args(annotation)
        candidates = [annotation, *args]
        if any(typing.get_origin(c) in (list, set, tuple) for c in candidates):
            out.add(name)
    return out


def _nul_free(data: Any, where: str) -> None:
    """422 for a NUL character in any string of ``data`` (pointing at it): PostgreSQL
    refuses it in text, so it can name nothing and match nothing (never a 500)."""
    stack: list[tuple[tuple[Any, ...], Any]] = [((), data)]
    while stack:
        loc, item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                detail = "a NUL character is not allowed"
                raise Problem(
                    422, "invalid_input", f"The {where} is invalid: {detail}",
                    errors=[{"pointer": _pointer(where, loc), "detail": detail}],
                )
        elif isinstance(item, dict):
            for key, value in item.items():
                stack.append(((*loc, key), key))
                stack.append(((*loc, key), value))
        elif isinstance(item, list):
            stack.extend(((*loc, i), value) for i, value in enumerate(item))


def _query(model: type[BaseModel]) -> BaseModel:
    lists = _list_fields(model)
    data: dict[str, Any] = {}
    for name in request.args:
        values = request.args.getlist(name)
        _nul_free({name: values}, "query")
        data[name] = values if name in lists else values[-1]
    return _validate(model, data, "query")


def _body(model: type[BaseModel]) -> BaseModel:
    if request.mimetype != "application/json":
        raise Problem(415, "unsupported_media_type", "Send the body as application/json.")
    raw = request.get_data(cache=True)
    try:
        parsed = loads(raw)  # bounded nesting, no NaN or Infinity
    except (ValueError, UnicodeDecodeError) as exc:
        raise Problem(400, "malformed_json", "The body is not well-formed JSON.") from exc
    _nul_free(parsed, "body")
    return _validate_json(model, raw)


def _raw_body(media: str) -> Any:
    """The body as a binary stream, when it is ``media`` (else 415): read by the
    handler as it goes (an ``Idempotency-Key`` request's body is already read)."""
    if request.mimetype != media:
        raise Problem(415, "unsupported_media_type", f"Send the body as {media}.")
    if idempotency.HEADER in request.headers:
        return io.BytesIO(request.get_data(cache=True))
    return request.stream


def _serialise(declared: Any, result: Any, status: int) -> Response:
    if isinstance(result, Response):  # an answer that is not JSON (response_media)
        return result
    if status == 204 or declared is None:
        return Response(status=204)
    if isinstance(result, BaseModel):
        payload: Any = result.model_dump(mode="json")
    elif isinstance(result, list):
        payload = [r.model_dump(mode="json") if isinstance(r, BaseModel) else r for r in result]
    else:
        payload = result
    resp = Response(json.dumps(payload), status=status, mimetype="application/json")
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _wrap(ep: Endpoint) -> Callable[..., Response]:
    def view(**params: str) -> Response:
        for value in params.values():
            if len(value) > MAX_PATH_PARAM or not PATH_PARAM_RE.match(value):
                raise not_found()
        actor = caller.authenticate()
        if ep.permission is not None:
            authorize(actor, ep.permission, params.get("unit_id") or None)
        call = Call(actor)
        if ep.body_limit is not None:
            request.max_content_length = ep.body_limit()

        def run() -> Response:
            if ep.query is not None:
                call.query = _query(ep.query)
            elif request.args:
                raise Problem(422, "invalid_input", "This endpoint takes no query parameters.")
            if ep.body is not None:
                call.body = _body(ep.body)
            elif ep.body_media is not None:
                call.body = _raw_body(ep.body_media)
            result = ep.handler(call, **params)
            return _serialise(ep.response, result, ep.status)

        return idempotency.run(actor, run)

    view.__name__ = ep.operation_id
    return view


def endpoint(
    bp: Blueprint,
    method: str,
    path: str,
    *,
    summary: str,
    tag: str,
    query: type[BaseModel] | None = None,
    body: type[BaseModel] | None = None,
    response: Any = None,
    status: int = 200,
    permission: str | None = None,
    extra_statuses: tuple[int, ...] = (),
    body_media: str | None = None,
    response_media: str | None = None,
    body_limit: Callable[[], int] | None = None,
) -> Callable[[F], F]:
    """Declare ``handler(call, **path_params)`` as ``method path`` (see the module).
    The handler returns a model (or a list of them) matching ``response``, or None
    with ``status`` 204; with ``response_media``, a :class:`flask.Response` of that
    type (``response`` then names nothing: pass ``str``). With ``body_media`` the
    body is that media type, handed over as a binary stream. Its docstring becomes
    the operation's description."""

    def register(handler: F) -> F:
        ep = Endpoint(
            method=method.upper(),
            path=path,
            handler=handler,
            summary=summary,
            tag=tag,
            query=query,
            body=body,
            response=response,
            status=status if response is not None else 204,
            permission=permission,
            description=(handler.__doc__ or "").strip(),
            operation_id=handler.__name__,
            extra_statuses=extra_statuses,
            body_media=body_media,
            response_media=response_media,
            body_limit=body_limit,
        )
        if any(e.operation_id == ep.operation_id for e in REGISTRY):
            raise ValueError(f"two endpoints named {ep.operation_id}")
        REGISTRY.append(ep)
        bp.add_url_rule(
            _flask_rule(path), endpoint=ep.operation_id, view_func=_wrap(ep), methods=[ep.method]
        )
        return handler

    return register
