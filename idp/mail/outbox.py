"""The mail outbox: e-mail is written to the database in the same transaction as
its cause, then delivered at least once, with retries, by any node.

* :func:`enqueue_email` renders a message and writes it (committing, or staged in
  the caller's transaction with ``commit=False``). Bodies are sealed with the master
  key (AES-GCM, context ``outbox:<id>``): a one-time code never lies in the database
  in clear. After a successful SMTP hand-over the sealed body is dropped.
* The row is written already leased to the enqueuing process (``sending``, lease
  :data:`FIRST_LEASE`), so no other node touches it meanwhile, and
  :func:`deliver_soon` hands the rendered message, kept in memory, to this process's
  courier thread: the mail usually leaves within milliseconds of the response, at
  the cost of one database write after the hand-over (marking it sent), not a
  claim, a read and a mark. The courier uses the first lease only while at least
  half of it is left; a message it did not send by then (the process died, the
  courier lagged, or ``deliver_soon`` was never called) is sent by the retry loop
  of any node once the lease ran out. A worker that exits normally first gives its
  courier up to :data:`EXIT_DRAIN_SECONDS` to finish.
* :func:`deliver_due` is the retry loop's step: it claims due messages (PostgreSQL
  ``FOR UPDATE SKIP LOCKED``, SQLite a conditional ``UPDATE``; see
  :mod:`idp.store.outbox_repo`) and sends them. A failed attempt is retried after
  ``RETRY_BASE_SECONDS * 2**(attempts-1)`` (at most ``RETRY_MAX_SECONDS``); after
  ``MAX_ATTEMPTS`` the message is ``dead`` with its ``last_error`` kept. A message
  whose ``discard_after`` passed (a code that expired while SMTP was down) is marked
  dead instead of being sent late.
* :func:`start_delivery_thread` runs that loop every ``interval`` seconds; ``idp
  serve`` starts one in each worker.

Without ``IDP_SMTP_URL`` (development) a message is "delivered" to the console:
printed once to stderr, clearly marked, and kept for ``/dev/outbox``.

The same outbox carries SMS (``kind`` ``sms``, :mod:`idp.sms.outbox`): a payload
with ``to`` (a number) and the sealed ``text``, handed to the SMS sender
(:mod:`idp.sms.transport`) with the same leases, retries and back-off.
"""

from __future__ import annotations

import atexit
import json
import logging
import queue
import sys
import threading
import time
import weakref
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flask import Flask, current_app, g, has_request_context

from idp.crypto.sealed_fields import outbox_context
from idp.errors import request_id
from idp.mail import smtp
from idp.mail.render import build_message, render_email
from idp.observability import metrics
from idp.observability.logs import bound_request_id
from idp.services import services, settings
from idp.sms import transport as sms_transport
from idp.store import outbox_repo
from idp.store.models import OutboxMessage, new_id, utcnow
from idp.store.unit_of_work import atomic

log = logging.getLogger("idp.mail")

MAX_ATTEMPTS = 8
RETRY_BASE_SECONDS = 5
RETRY_MAX_SECONDS = 30 * 60
LEASE = timedelta(minutes=2)
FIRST_LEASE = timedelta(seconds=60)
COURIER_IDLE_SECONDS = 30.0
EXIT_DRAIN_SECONDS = 5.0
_EXTENSION = "unitgate_courier"
_HAND_OFFS = "unitgate_outbox_hand_offs"
_courier_lock = threading.Lock()
_smtp_local = threading.local()


def _context(message_id: str) -> str:
    return outbox_context(message_id)


@dataclass(frozen=True)
class HandOff:
    """A message leased to this process when it was enqueued, with its bodies in
    clear (in memory only), waiting for :func:`deliver_soon`."""

    message_id: str
    payload: dict[str, Any]
    body: dict[str, str]
    created_at: datetime
    lease_until: datetime
    kind: str = "email"


def enqueue_email(
    to: str,
    template: str,
    lang: str,
    context: dict[str, Any],
    discard_after: datetime | None = None,
    commit: bool = True,
) -> str:
    """Render ``mail/<template>`` in ``lang`` for ``to`` and write it to the outbox,
    leased to this process for :data:`FIRST_LEASE`; returns the message id. Call
    :func:`deliver_soon` with the id, in the same request or app context, once the
    message is committed: with ``commit=False`` it is only staged in the current
    transaction, to be committed with its cause."""
    rendered = render_email(template, lang, **context)
    payload: dict[str, Any] = {
        "to": to,
        "subject": rendered.subject,
        "lang": lang,
        "template": template,
    }
    body = {"text": rendered.text, "html": rendered.html}
    return enqueue("email", payload, body, discard_after, commit)


def enqueue(
    kind: str,
    payload: dict[str, Any],
    body: dict[str, str],
    discard_after: datetime | None = None,
    commit: bool = True,
) -> str:
    """Write a message of ``kind`` (``email``, ``sms``) with its ``body`` sealed into
    ``payload``, leased to this process like :func:`enqueue_email`; the message id."""
    message_id = new_id()
    payload = dict(payload)
    if has_request_context():  # the delivery's log lines carry the cause's request id
        payload.setdefault("request_id", request_id())
    payload["body"] = services().sealer.seal(json.dumps(body).encode(), _context(message_id))
    if discard_after is not None:
        payload["discard_after"] = discard_after.timestamp()
    now = utcnow()
    lease_until = now + FIRST_LEASE
    message = OutboxMessage(
        id=message_id, kind=kind, payload=payload, created_at=now,
        status=outbox_repo.SENDING, attempts=0, next_attempt_at=lease_until,
    )
    if commit:
        with atomic():
            outbox_repo.insert(message)
    else:
        outbox_repo.stage(message)
    hand_offs: dict[str, HandOff] = g.setdefault(_HAND_OFFS, {})
    hand_offs[message_id] = HandOff(message_id, payload, body, now, lease_until, kind)
    return message_id


def open_body(message: OutboxMessage) -> dict[str, str] | None:
    """The text and HTML bodies of a message, or None once they were dropped."""
    return _open_sealed(message.id, message.payload or {})


def _open_sealed(message_id: str, payload: dict[str, Any]) -> dict[str, str] | None:
    sealed = payload.get("body")
    if not sealed:
        return None
    return dict(json.loads(services().sealer.open(sealed, _context(message_id))))


def retry_delay(attempts: int) -> timedelta:
    """Exponential back-off after the ``attempts``-th failed attempt."""
    seconds = RETRY_BASE_SECONDS * 2 ** max(0, attempts - 1)
    return timedelta(seconds=min(RETRY_MAX_SECONDS, seconds))


def deliver_one(message_id: str, now: datetime | None = None) -> bool:
    """Claim and send one message if it is due; True when it was delivered."""
    now = now or utcnow()
    row = outbox_repo.claim(message_id, now, LEASE)
    return row is not None and _attempt(
        row.id, dict(row.payload or {}), row.attempts or 0, row.created_at, now,
        kind=row.kind or "email",
    )


def deliver_handed_off(hand_off: HandOff, now: datetime | None = None) -> bool:
    """Send a message this process leased when enqueuing it, without claiming it
    again, while at least half of that lease is left (else the retry loop sends it
    once the lease ran out); True when it was delivered."""
    now = now or utcnow()
    if hand_off.lease_until - now < FIRST_LEASE / 2:
        log.warning("outbox message %s waited too long for the courier; the retry loop "
                    "sends it when its lease ends", hand_off.message_id)
        return False
    return _attempt(hand_off.message_id, dict(hand_off.payload), 0, hand_off.created_at,
                    now, hand_off.body, hand_off.kind)


def deliver_due(app: Flask, limit: int = 50, now: datetime | None = None) -> int:
    """Claim up to ``limit`` due messages and send them; returns how many were
    delivered. Safe to run on several nodes at once: no message is claimed twice
    while its lease lasts."""
    with app.app_context():
        now = now or utcnow()
        delivered = 0
        for row in outbox_repo.claim_due(now, limit, LEASE):
            if _attempt(row.id, dict(row.payload or {}), row.attempts or 0, row.created_at, now,
                        kind=row.kind or "email"):
                delivered += 1
        return delivered


def _attempt(
    message_id: str,
    payload: dict[str, Any],
    attempts: int,
    created_at: datetime,
    now: datetime,
    body: dict[str, str] | None = None,
    kind: str = "email",
) -> bool:
    """:func:`_deliver` with the log lines carrying the request id that queued the
    message, and the outcome counted."""
    with bound_request_id(payload.get("request_id")):
        sent = _deliver(message_id, payload, attempts, created_at, now, body, kind)
    return sent


def _deliver(
    message_id: str,
    payload: dict[str, Any],
    attempts: int,
    created_at: datetime,
    now: datetime,
    body: dict[str, str] | None = None,
    kind: str = "email",
) -> bool:
    """One delivery attempt of a message this caller holds the lease of; records the
    outcome. ``body`` is the opened body when the caller has it in memory; ``kind``
    says whether it goes to SMTP or to the SMS sender."""
    discard_after = payload.get("discard_after")
    if discard_after is not None and now.timestamp() > float(discard_after):
        payload.pop("body", None)
        with atomic():
            outbox_repo.mark_failed(message_id, "expired before delivery", now, True, payload)
        log.warning("outbox message %s expired before delivery", message_id)
        metrics.count(metrics.OUTBOX_DELIVERIES, kind, "expired")
        return False
    try:
        if body is None:
            body = _open_sealed(message_id, payload)
        if body is None:
            raise smtp.SmtpDeliveryError("message body missing")
        smtp_url = settings().smtp_url
        if kind == "sms":
            sms_transport.send(settings(), payload["to"], body["text"])
            if sms_transport.is_real(settings()):
                payload.pop("body", None)
        elif smtp_url:
            message = build_message(
                settings().mail_from, payload["to"], payload["subject"],
                body["text"], body["html"], created_at,
            )
            _smtp_session(smtp_url).send(message)
            payload.pop("body", None)
        else:
            _print_to_console(payload, body["text"])
    except (smtp.SmtpDeliveryError, smtp.SmtpConfigError, sms_transport.SmsDeliveryError) as exc:
        attempts += 1
        dead = attempts >= MAX_ATTEMPTS
        with atomic():
            outbox_repo.mark_failed(message_id, str(exc), now + retry_delay(attempts), dead)
        log.warning(
            "outbox message %s attempt %d failed%s: %s",
            message_id, attempts, " (dead)" if dead else "", exc,
        )
        metrics.count(metrics.OUTBOX_DELIVERIES, kind, "dead" if dead else "failed")
        return False
    with atomic():
        outbox_repo.mark_sent(message_id, payload)
    metrics.count(metrics.OUTBOX_DELIVERIES, kind, "sent")
    log.info("outbox message %s (%s) delivered after %d failed attempts",
             message_id, kind, attempts)
    return True


def _smtp_session(smtp_url: str) -> smtp.SmtpSession:
    """This thread's reusable SMTP connection to ``smtp_url`` (one per courier or
    delivery thread, so a burst of codes does not open a connection per message)."""
    session: smtp.SmtpSession | None = getattr(_smtp_local, "session", None)
    if session is None or getattr(_smtp_local, "url", None) != smtp_url:
        if session is not None:
            session.close()
        session = smtp.SmtpSession(smtp.parse_smtp_url(smtp_url))
        _smtp_local.session, _smtp_local.url = session, smtp_url
    return session


def close_smtp_session() -> None:
    """Close this thread's SMTP connection, if any (when the thread goes idle)."""
    session: smtp.SmtpSession | None = getattr(_smtp_local, "session", None)
    _smtp_local.session = None
    if session is not None:
        session.close()


def _print_to_console(payload: dict[str, Any], text: str) -> None:
    banner = "=" * 20 + " DEVELOPMENT MAIL (IDP_SMTP_URL unset, not sent) " + "=" * 20
    # Printed once, on stderr; the log (also on stderr in development) only notes it,
    # so the console does not show every mail twice.
    log.info("development mail to %s printed on the console, not sent", payload["to"])
    print(
        f"\n{banner}\nTo: {payload['to']}\nSubject: {payload['subject']}\n\n{text}\n"
        f"{'=' * len(banner)}\n",
        file=sys.stderr,
        flush=True,
    )


class Courier:
    """One background thread per process that delivers messages right after their
    transaction committed. It stops when idle and starts again on demand; when the
    process exits normally it first waits up to :data:`EXIT_DRAIN_SECONDS` for the
    messages still queued."""

    def __init__(self, app: Flask) -> None:
        self._app = app
        self._queue: queue.Queue[tuple[str, HandOff | None]] = queue.Queue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        atexit.register(_drain_at_exit, weakref.ref(self))

    def submit(self, message_id: str, hand_off: HandOff | None = None) -> None:
        """Queue a committed message: sent from ``hand_off`` when given (the first
        lease of this process), else claimed by id like the retry loop does."""
        self._queue.put((message_id, hand_off))
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="outbox-courier", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                message_id, hand_off = self._queue.get(timeout=COURIER_IDLE_SECONDS)
            except queue.Empty:
                with self._lock:
                    if self._queue.empty():
                        self._thread = None
                        close_smtp_session()
                        return
                continue
            try:
                with self._app.app_context():
                    if hand_off is not None:
                        deliver_handed_off(hand_off)
                    else:
                        deliver_one(message_id)
            except Exception:
                log.exception("outbox courier failed on message %s", message_id)
            finally:
                self._queue.task_done()

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until every submitted message had its immediate attempt (at most
        ``timeout`` seconds when given); True when none is left."""
        if timeout is None:
            self._queue.join()
            return True
        deadline = time.monotonic() + timeout
        with self._queue.all_tasks_done:
            while self._queue.unfinished_tasks:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._queue.all_tasks_done.wait(left)
        return True


def _drain_at_exit(ref: weakref.ref[Courier]) -> None:
    found = ref()
    if found is not None and not found.drain(EXIT_DRAIN_SECONDS):
        log.warning("outbox courier: messages left at exit go out when their lease ends")


def courier(app: Flask) -> Courier:
    """The courier of ``app`` in this process."""
    with _courier_lock:
        found: Courier | None = app.extensions.get(_EXTENSION)
        if found is None:
            found = app.extensions[_EXTENSION] = Courier(app)
        return found


def deliver_soon(message_id: str) -> None:
    """Try to deliver a committed message now, in the background; on failure the retry
    loop (:func:`deliver_due`) takes over. A message enqueued in this app context is
    sent from memory under its first lease (see the module docstring)."""
    hand_offs: dict[str, HandOff] = g.get(_HAND_OFFS) or {}
    # current_app is typed as the Flask app, not as the LocalProxy it is
    courier(current_app._get_current_object()).submit(  # type: ignore[attr-defined]
        message_id, hand_offs.pop(message_id, None)
    )


@dataclass
class DeliveryThread:
    """Handle of a running retry loop; :meth:`stop` ends it."""

    thread: threading.Thread
    stop_event: threading.Event = field(default_factory=threading.Event)

    def stop(self, timeout: float = 10.0) -> None:
        self.stop_event.set()
        self.thread.join(timeout)


def start_delivery_thread(app: Flask, interval: float = 2.0, limit: int = 50) -> DeliveryThread:
    """Start a daemon thread that runs :func:`deliver_due` every ``interval`` seconds
    (at once again while a full batch was due) until stopped."""
    stop_event = threading.Event()

    def loop() -> None:
        while not stop_event.is_set():
            try:
                if deliver_due(app, limit) >= limit:
                    continue
            except Exception:
                log.exception("outbox delivery loop step failed")
            stop_event.wait(interval)
        close_smtp_session()

    thread = threading.Thread(target=loop, name="outbox-delivery", daemon=True)
    handle = DeliveryThread(thread=thread, stop_event=stop_event)
    thread.start()
    return handle
