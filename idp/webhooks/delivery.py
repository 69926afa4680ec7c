"""Delivering webhook events: staged by :func:`idp.webhooks.emit` in the cause's
transaction, claimed with leases (:mod:`idp.store.leases`, the outbox's idiom) and
POSTed by any node, with exponential back-off.

* Each attempt is logged (``webhook_attempts``: time, HTTP status, duration, error,
  the start of the answer). A 2xx answer delivers; anything else (a refused
  connection, a timeout, a 3xx, 4xx or 5xx) is retried after
  ``RETRY_BASE_SECONDS * 2**(attempts-1)`` (at most ``RETRY_MAX_SECONDS``) until
  ``MAX_ATTEMPTS``, then the delivery is ``dead`` (redeliver by hand).
* ``webhook-id`` is the delivery's id, the same on every retry and redelivery, so
  a receiver drops what it already processed.
* An endpoint that has failed without a single success for
  ``IDP_WEBHOOK_DISABLE_AFTER_DAYS`` is disabled and the unit's main users get an
  e-mail (through the mail outbox; a merchant client's endpoint: the audit event
  ``webhook.disabled`` only); its due deliveries wait, ``dead``, for a redelivery by
  hand.
* Finished deliveries (sent or dead) and their log are deleted after :data:`KEEP`
  (30 days) by the loop, a bounded batch every ten minutes.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

from flask import Flask

from idp import audit
from idp.mail import outbox
from idp.services import settings
from idp.store import unit_of_work, webhooks_repo
from idp.store.background import LoopThread, start_loop
from idp.store.models import WebhookAttempt, WebhookDelivery, new_id, utcnow
from idp.store.unit_of_work import atomic
from idp.webhooks import endpoints, signing, targets

log = logging.getLogger("idp.webhooks")

MAX_ATTEMPTS = 16
RETRY_BASE_SECONDS = 5
RETRY_MAX_SECONDS = 6 * 3600
LEASE = timedelta(minutes=2)
KEEP = timedelta(days=30)  # finished deliveries and their log are kept this long
PRUNE_BATCH = 500
PRUNE_EVERY_SECONDS = 600.0


def retry_delay(attempts: int) -> timedelta:
    """Exponential back-off after the ``attempts``-th failed attempt."""
    seconds = RETRY_BASE_SECONDS * 2 ** max(0, min(attempts - 1, 30))
    return timedelta(seconds=min(RETRY_MAX_SECONDS, seconds))


def deliver_due(app: Flask, limit: int = 50, now: datetime | None = None) -> int:
    """Claim up to ``limit`` due deliveries and send them; how many were delivered.
    Safe on several nodes at once."""
    with app.app_context():
        now = now or utcnow()
        return sum(_attempt(row, now) for row in webhooks_repo.claim_due(now, limit, LEASE))


def prune(app: Flask, now: datetime | None = None) -> int:
    """Delete finished deliveries (sent or dead) older than :data:`KEEP` with their
    attempt log, at most :data:`PRUNE_BATCH` per call; how many."""
    with app.app_context(), atomic():
        return webhooks_repo.prune((now or utcnow()) - KEEP, PRUNE_BATCH)


def _attempt(row: WebhookDelivery, now: datetime) -> bool:
    endpoint = webhooks_repo.endpoint(row.endpoint_id)
    if endpoint is None:
        return False
    if not endpoint.enabled:
        with atomic():
            webhooks_repo.mark_failed(row.id, "endpoint disabled", now, True)
        return False
    conf = settings()
    # The signed timestamp is the wall-clock time of this attempt (receivers refuse old
    # ones against replay); ``now`` only schedules.
    headers = signing.headers(endpoints.live_secrets(endpoint, now), row.id,
                              int(time.time()), row.body)
    endpoint_id, unit_id, url = endpoint.id, endpoint.unit_id, endpoint.url
    failing_since = endpoint.failing_since
    unit_of_work.rollback()  # no transaction stays open during the HTTP request
    answer = targets.post(url, headers, row.body, conf.webhook_timeout_seconds,
                          conf.webhook_allow_private)
    attempts = (row.attempts or 0) + 1
    log_row = WebhookAttempt(
        id=new_id(), delivery_id=row.id, endpoint_id=endpoint_id, at=now,
        status_code=answer.status, duration_ms=answer.duration_ms,
        error=answer.error[:500] if answer.error else None,
        response=answer.body[:1000] if answer.body else None,
    )
    with atomic():
        webhooks_repo.add_attempt(log_row)
        if answer.error is None:
            webhooks_repo.mark_sent(row.id, now)
            if failing_since is not None:
                webhooks_repo.set_endpoint(endpoint_id, {"failing_since": None})
        else:
            dead = attempts >= MAX_ATTEMPTS
            webhooks_repo.mark_failed(row.id, answer.error, now + retry_delay(attempts), dead)
            _note_failure(endpoint_id, unit_id, url, failing_since, now)
    if answer.error is None:
        log.info("webhook %s delivered to endpoint %s", row.id, endpoint_id)
        return True
    log.warning("webhook %s to endpoint %s attempt %d failed: %s", row.id, endpoint_id,
                attempts, answer.error)
    return False


def _note_failure(
    endpoint_id: str, unit_id: str | None, url: str, failing_since: datetime | None,
    now: datetime,
) -> None:
    """Start the endpoint's failure run, or disable it when the run lasted too long
    (staged in the attempt's transaction, with the e-mails to the unit's main users;
    a merchant client's endpoint, ``unit_id`` None, gets the audit event only)."""
    if failing_since is None:
        webhooks_repo.set_endpoint(endpoint_id, {"failing_since": now})
        return
    days = settings().webhook_disable_after_days
    if now - failing_since < timedelta(days=days):
        return
    if not webhooks_repo.disable_failing(endpoint_id, failing_since):
        return  # a success or another node's attempt came first
    audit.record(audit.Actor.system("webhooks"), "webhook.disabled", endpoint_id,
                 {"failing_since": failing_since.isoformat()}, unit_id=unit_id)
    if unit_id is None:
        log.warning("merchant webhook endpoint %s disabled after failing since %s",
                    endpoint_id, failing_since.isoformat())
        return
    name = webhooks_repo.unit_name(unit_id)
    for email, lang in webhooks_repo.main_user_contacts(unit_id, now):
        outbox.enqueue_email(
            email, "webhook_disabled", lang,
            {"unit_name": name, "url": url, "days": f"{days:g}"}, commit=False,
        )
    log.warning("webhook endpoint %s disabled after failing since %s", endpoint_id,
                failing_since.isoformat())


DeliveryThread = LoopThread


def start_delivery_thread(app: Flask, interval: float = 2.0, limit: int = 20) -> LoopThread:
    """Run :func:`deliver_due` every ``interval`` seconds (at once again after a full
    batch) in a daemon thread until stopped (:func:`idp.store.background.start_loop`)."""
    return start_loop("webhook-delivery", lambda n: deliver_due(app, n), lambda: prune(app),
                      interval=interval, limit=limit, prune_every=PRUNE_EVERY_SECONDS,
                      log=log)
