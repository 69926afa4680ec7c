"""Log lines: readable text or one JSON object per line (``IDP_LOG_FORMAT``).

Every record carries a ``request_id``: the current request's
(:func:`idp.errors.request_id`), else the one bound with :func:`bound_request_id`
(the outbox binds the id of the request that queued a message while it delivers
it), else empty. Search the logs of every node for the id a user reports.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

from flask import g, has_request_context

_bound: ContextVar[str] = ContextVar("unitgate_request_id", default="")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
_HANDLER_MARK = "_unitgate_handler"


def current_request_id() -> str:
    """The request id of the log line being written (see the module docstring)."""
    if has_request_context():
        rid = g.get("request_id")
        if rid:
            return str(rid)
    return _bound.get()


@contextmanager
def bound_request_id(request_id: str | None) -> Iterator[None]:
    """Log lines written inside carry ``request_id`` (outside a request)."""
    token = _bound.set(request_id or "")
    try:
        yield
    finally:
        _bound.reset(token)


class RequestIdFilter(logging.Filter):
    """Adds ``record.request_id`` unless the call passed one in ``extra``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = current_request_id()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts`` (UTC, ISO 8601), ``level``, ``logger``,
    ``message``, ``request_id`` and ``exc`` (the stack trace) when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "") or current_request_id(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str, fmt: str) -> None:
    """The root logger writes to stderr in ``fmt`` (``text`` or ``json``). Called by
    every ``create_app``; it replaces only the handler it installed itself."""
    root = logging.getLogger()
    root.setLevel(level.upper())
    for handler in list(root.handlers):
        if getattr(handler, _HANDLER_MARK, False):
            root.removeHandler(handler)
    if fmt != "json" and any(not getattr(h, _HANDLER_MARK, False) for h in root.handlers):
        return  # someone (a test runner, an embedding program) configured text logs
    handler = logging.StreamHandler()
    setattr(handler, _HANDLER_MARK, True)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root.addHandler(handler)
