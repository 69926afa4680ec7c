"""Prometheus metrics (``GET /metrics``, text format) and the health probes.

* Every metric is labelled, so no value exists before the first request: under
  ``idp serve`` (gunicorn) the multiprocess mode is chosen before a worker makes its
  first value (:func:`enable_multiprocess`), and ``/metrics`` on any worker adds up
  the files of all workers in ``PROMETHEUS_MULTIPROC_DIR``.
* The request metrics are per route rule (``/scim/v2/Users/<id>``), never the raw
  path, so the label set stays small. A request's cost is one clock read at the
  start and two cached children updated at the end (:func:`_observe`).
* The outbox backlog is read from the database at scrape time, not counted.
* ``/metrics`` answers only a bearer of ``IDP_METRICS_TOKEN`` when that is set,
  else only loopback peers (after ``--proxy-hops``): never the public.
* ``/healthz`` is liveness (the process answers; no dependency is asked),
  ``/readyz`` is readiness (the database and the ephemeral store answer and the
  schema suits this release).
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from flask import Flask, Response, jsonify, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

REQUESTS = Counter(
    "unitgate_http_requests_total",
    "HTTP requests answered, by method, route rule and status.",
    ["method", "endpoint", "status"],
)
LATENCY = Histogram(
    "unitgate_http_request_duration_seconds",
    "Time to answer an HTTP request, by method and route rule.",
    ["method", "endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
SIGNINS = Counter(
    "unitgate_signins_total",
    "Sign-in steps, by method (otp, pwd, fed, otp+totp, ...) and outcome.",
    ["method", "outcome"],
)
CODES = Counter(
    "unitgate_codes_sent_total",
    "One-time codes asked for, by channel and outcome (sent, throttled).",
    ["channel", "outcome"],
)
OUTBOX_DELIVERIES = Counter(
    "unitgate_outbox_deliveries_total",
    "Outbox delivery attempts, by kind (email, sms) and outcome (sent, failed, expired).",
    ["kind", "outcome"],
)
SCIM = Counter(
    "unitgate_scim_operations_total",
    "SCIM requests, by resource, HTTP method and status.",
    ["resource", "method", "status"],
)
LDAP = Counter(
    "unitgate_ldap_operations_total",
    "LDAP operations, by operation (bind, sync) and outcome.",
    ["operation", "outcome"],
)
CACHE = Counter(
    "unitgate_cache_lookups_total",
    "Per-process cache lookups, by cache and result (hit, miss).",
    ["cache", "result"],
)

ALL = (REQUESTS, LATENCY, SIGNINS, CODES, OUTBOX_DELIVERIES, SCIM, LDAP, CACHE)
_generation = 0  # bumped when the value class changes: cached children are stale

_START = "unitgate.metrics.start"
_UNMATCHED = "<unmatched>"
_children: dict[tuple[str, str, int, str], tuple[Any, Any, Any]] = {}
_MAX_CHILDREN = 4096  # route rules x methods x statuses: a few hundred in practice


def enable_multiprocess(directory: str | None = None) -> str:
    """Make every value created from now on in this process and its forks a file in
    ``directory`` (default ``$PROMETHEUS_MULTIPROC_DIR``), emptied of an earlier
    run's files. Call before the workers fork (``idp serve`` does)."""
    from prometheus_client import values

    path = Path(directory or os.environ[MULTIPROC_ENV])
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()
    os.environ[MULTIPROC_ENV] = str(path)
    values.ValueClass = values.get_value_class()
    _forget_children()
    return str(path)


def _forget_children() -> None:
    """Drop every child made so far (they hold values of the old class)."""
    global _generation
    _generation += 1
    _children.clear()
    for metric in ALL:
        with metric._lock:
            metric._metrics.clear()


class LazyChild:
    """One labelled child of a metric, made on first use (so in the worker, after
    :func:`enable_multiprocess`) and then kept: the cheapest way to count on a hot
    path."""

    def __init__(self, metric: Counter, *labels: str) -> None:
        self.metric = metric
        self.labels = labels
        self._child: Any = None
        self._generation = -1

    def inc(self) -> None:
        if self._generation != _generation:
            self._child = self.metric.labels(*self.labels)
            self._generation = _generation
        self._child.inc()


def worker_exited(pid: int) -> None:
    """gunicorn's ``child_exit`` hook: the dead worker's live gauges are dropped."""
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


def count(counter: Counter, *labels: str) -> None:
    """Add one to ``counter``'s child with ``labels``; never fails the caller."""
    with contextlib.suppress(Exception):  # a metric must never break a sign-in
        counter.labels(*labels).inc()


def _start() -> None:
    request.environ[_START] = time.perf_counter()


def _observe(response: Response) -> Response:
    start = request.environ.get(_START)
    if start is None:
        return response
    elapsed = time.perf_counter() - start
    rule = request.url_rule
    endpoint = rule.rule if rule is not None else _UNMATCHED
    resource = ""
    if endpoint.startswith("/scim/"):
        resource = _scim_resource(endpoint, request.view_args)
    key = (request.method, endpoint, response.status_code, resource)
    children = _children.get(key)
    if children is None:
        status = str(response.status_code)
        scim = SCIM.labels(resource, request.method, status) if resource else None
        children = (
            REQUESTS.labels(request.method, endpoint, status),
            LATENCY.labels(request.method, endpoint),
            scim,
        )
        if len(_children) < _MAX_CHILDREN:
            _children[key] = children
    children[0].inc()
    children[1].observe(elapsed)
    if children[2] is not None:
        children[2].inc()
    return response


def _scim_resource(rule: str, view_args: dict[str, Any] | None) -> str:
    """``Users``, ``Groups``, ``Bulk``, ``Schemas``, ... of a SCIM route rule; the
    kind the request named where the rule takes either; ``other`` for the catch-all."""
    kind = (view_args or {}).get("kind")
    if isinstance(kind, str):
        return kind
    parts = rule.split("/")
    name = parts[3] if len(parts) > 3 else ""
    return "other" if not name or name.startswith("<") else name


class OutboxCollector(Collector):
    """The outbox backlog, read from the database at scrape time."""

    def collect(self) -> Iterable[GaugeMetricFamily]:
        from idp.store import health, outbox_repo
        from idp.store.models import utcnow

        try:
            live, dead, oldest = outbox_repo.backlog()
        except Exception:  # the database is down: the rest of the metrics still answer
            health.rollback_quietly()
            yield GaugeMetricFamily(
                "unitgate_outbox_readable", "1 when the outbox could be read.", value=0
            )
            return
        age = 0.0
        if oldest is not None:
            now = utcnow()
            if oldest.tzinfo is None:
                now = now.replace(tzinfo=None)
            age = max(0.0, (now - oldest).total_seconds())
        yield GaugeMetricFamily(
            "unitgate_outbox_readable", "1 when the outbox could be read.", value=1
        )
        yield GaugeMetricFamily(
            "unitgate_outbox_depth", "Outbox messages not yet delivered.", value=live
        )
        yield GaugeMetricFamily(
            "unitgate_outbox_oldest_age_seconds",
            "Age of the oldest undelivered outbox message (0 when none).", value=age,
        )
        yield GaugeMetricFamily(
            "unitgate_outbox_dead", "Outbox messages given up after every retry.", value=dead
        )


def exposition() -> bytes:
    """The text exposition: this process's (or every worker's) metrics and the
    outbox backlog."""
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        text = generate_latest(registry)
    else:
        text = generate_latest(REGISTRY)
    outbox = CollectorRegistry()
    outbox.register(OutboxCollector())
    return text + generate_latest(outbox)


def _loopback(addr: str | None) -> bool:
    try:
        return addr is not None and ipaddress.ip_address(addr).is_loopback
    except ValueError:
        return False


def _metrics_allowed(token: str | None) -> Response | None:
    """None when the caller may read the metrics, else the refusal."""
    if token:
        given = request.headers.get("Authorization", "")
        scheme, _, value = given.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(value.encode(), token.encode()):
            return None
        resp = jsonify({"error": "invalid_token"})
        resp.status_code = 401
        resp.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return resp
    if _loopback(request.remote_addr):
        return None
    resp = jsonify({"error": "forbidden"})
    resp.status_code = 403
    return resp


def setup_metrics(app: Flask, token: str | None) -> None:
    """The request hooks (registered first, so the observation runs after every
    other ``after_request`` hook) and ``GET /metrics``."""
    app.before_request(_start)
    app.after_request(_observe)

    @app.get("/metrics")
    def metrics() -> Response:
        refused = _metrics_allowed(token)
        if refused is not None:
            return refused
        resp = Response(exposition(), mimetype=CONTENT_TYPE_LATEST.split(";")[0])
        resp.headers["Content-Type"] = CONTENT_TYPE_LATEST
        resp.headers["Cache-Control"] = "no-store"
        return resp


def setup_probes(app: Flask) -> None:
    """``/healthz`` (liveness) and ``/readyz`` (readiness)."""
    from idp.ephemeral import EphemeralUnavailable
    from idp.store import health, migrate

    @app.get("/healthz")
    def healthz() -> tuple[Response, int]:
        """Liveness: the process answers requests. Asks no dependency, so an outage
        of the database or Redis never makes an orchestrator restart healthy nodes."""
        return jsonify({"status": "ok"}), 200

    @app.get("/readyz")
    def readyz() -> tuple[Response, int]:
        """Readiness: 200 when the database and the ephemeral store answer and the
        schema suits this release, else 503 naming the failing check."""
        from idp.services import ephemeral

        checks: dict[str, str] = {}
        try:
            health.ping()
            checks["database"] = "ok"
            current = migrate.schema_is_current(health.schema_revision())
            checks["migrations"] = "ok" if current else "behind"
        except Exception:
            health.rollback_quietly()
            checks["database"] = "unavailable"
            checks["migrations"] = "unknown"
        try:
            ephemeral().ping()
            checks["ephemeral"] = "ok"
        except (EphemeralUnavailable, Exception):
            checks["ephemeral"] = "unavailable"
        ok = all(v == "ok" for v in checks.values())
        return jsonify({"status": "ok" if ok else "unavailable", "checks": checks}), (
            200 if ok else 503
        )
