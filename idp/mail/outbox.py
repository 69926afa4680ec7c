"""The mail outbox: e-mail is written to the database in the same transaction as
its cause, then delivered at least once, with retries, by any node.

* :func:`enqueue_email` renders a message and writes it (committing, or staged in
  the caller's transaction with ``commit=False``). Bodies are sealed with the master
  key (AES-GCM, context ``outbox:<id>``): a one-time code never lies in the database
  in clear. After a successful SMTP hand-over the sealed body is dropped.
* :func:`deliver_soon` hands a committed message to this process's courier thread,
  so the mail usually leaves within milliseconds of the response.
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
logged and printed to stderr, clearly marked, and kept for ``/dev/outbox``.
"""

from __future__ import annotations

import json
import logging
import queue
import sys
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flask import Flask, current_app

from idp.mail import smtp
from idp.mail.render import build_message, render_email
from idp.services import services, settings
from idp.store import outbox_repo
from idp.store.models import OutboxMessage, new_id, utcnow

log = logging.getLogger("idp.mail")

MAX_ATTEMPTS = 8
RETRY_BASE_SECONDS = 5
RETRY_MAX_SECONDS = 30 * 60
LEASE = timedelta(minutes=2)
COURIER_IDLE_SECONDS = 30.0
_EXTENSION = "unitgate_courier"
_courier_lock = threading.Lock()
_smtp_local = threading.local()


def _context(message_id: str) -> str:
    return f"outbox:{message_id}"


def enqueue_email(
    to: str,
    template: str,
    lang: str,
    context: dict[str, Any],
    discard_after: datetime | None = None,
    commit: bool = True,
) -> str:
    """Render ``mail/<template>`` in ``lang`` for ``to`` and write it to the outbox;
    returns the message id. With ``commit=False`` the message is only staged in the
    current transaction: commit it with its cause, then call :func:`deliver_soon`."""
    rendered = render_email(template, lang, **context)
    message_id = new_id()
    body = json.dumps({"text": rendered.text, "html": rendered.html}).encode()
    payload: dict[str, Any] = {
        "to": to,
        "subject": rendered.subject,
        "lang": lang,
        "template": template,
        "body": services().sealer.seal(body, _context(message_id)),
    }
    if discard_after is not None:
        payload["discard_after"] = discard_after.timestamp()
    message = OutboxMessage(id=message_id, kind="email", payload=payload, created_at=utcnow())
    if commit:
        outbox_repo.insert(message)
    else:
        outbox_repo.stage(message)
    return message_id


def open_body(message: OutboxMessage) -> dict[str, str] | None:
    """The text and HTML bodies of a message, or None once they were dropped."""
    sealed = (message.payload or {}).get("body")
    if not sealed:
        return None
    return dict(json.loads(services().sealer.open(sealed, _context(message.id))))


def retry_delay(attempts: int) -> timedelta:
    """Exponential back-off after the ``attempts``-th failed attempt."""
    seconds = RETRY_BASE_SECONDS * 2 ** max(0, attempts - 1)
    return timedelta(seconds=min(RETRY_MAX_SECONDS, seconds))


def deliver_one(message_id: str, now: datetime | None = None) -> bool:
    """Claim and send one message if it is still due; True when it was delivered."""
    now = now or utcnow()
    row = outbox_repo.claim(message_id, now, LEASE)
    return row is not None and _attempt(row, now)


def deliver_due(app: Flask, limit: int = 50, now: datetime | None = None) -> int:
    """Claim up to ``limit`` due messages and send them; returns how many were
    delivered. Safe to run on several nodes at once: no message is claimed twice
    while its lease lasts."""
    with app.app_context():
        now = now or utcnow()
        delivered = 0
        for row in outbox_repo.claim_due(now, limit, LEASE):
            if _attempt(row, now):
                delivered += 1
        return delivered


def _attempt(row: OutboxMessage, now: datetime) -> bool:
    payload = dict(row.payload or {})
    discard_after = payload.get("discard_after")
    if discard_after is not None and now.timestamp() > float(discard_after):
        payload.pop("body", None)
        outbox_repo.mark_failed(row.id, "expired before delivery", now, True, payload)
        log.warning("outbox message %s expired before delivery", row.id)
        return False
    try:
        body = open_body(row)
        if body is None:
            raise smtp.SmtpDeliveryError("message body missing")
        smtp_url = settings().smtp_url
        if smtp_url:
            message = build_message(
                settings().mail_from, payload["to"], payload["subject"],
                body["text"], body["html"], row.created_at,
            )
            _smtp_session(smtp_url).send(message)
            payload.pop("body", None)
        else:
            _print_to_console(payload, body["text"])
    except (smtp.SmtpDeliveryError, smtp.SmtpConfigError) as exc:
        attempts = (row.attempts or 0) + 1
        dead = attempts >= MAX_ATTEMPTS
        outbox_repo.mark_failed(row.id, str(exc), now + retry_delay(attempts), dead)
        log.warning(
            "outbox message %s attempt %d failed%s: %s",
            row.id, attempts, " (dead)" if dead else "", exc,
        )
        return False
    outbox_repo.mark_sent(row.id, payload)
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
    log.warning("%s\nTo: %s\nSubject: %s\n\n%s", banner, payload["to"], payload["subject"], text)
    print(
        f"\n{banner}\nTo: {payload['to']}\nSubject: {payload['subject']}\n\n{text}\n"
        f"{'=' * len(banner)}\n",
        file=sys.stderr,
        flush=True,
    )


class Courier:
    """One background thread per process that delivers messages right after their
    transaction committed. It stops when idle and starts again on demand."""

    def __init__(self, app: Flask) -> None:
        self._app = app
        self._queue: queue.Queue[str] = queue.Queue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def submit(self, message_id: str) -> None:
        self._queue.put(message_id)
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="outbox-courier", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                message_id = self._queue.get(timeout=COURIER_IDLE_SECONDS)
            except queue.Empty:
                with self._lock:
                    if self._queue.empty():
                        self._thread = None
                        close_smtp_session()
                        return
                continue
            try:
                with self._app.app_context():
                    deliver_one(message_id)
            except Exception:
                log.exception("outbox courier failed on message %s", message_id)
            finally:
                self._queue.task_done()

    def drain(self) -> None:
        """Wait until every submitted message had its immediate attempt."""
        self._queue.join()


def courier(app: Flask) -> Courier:
    """The courier of ``app`` in this process."""
    with _courier_lock:
        found = app.extensions.get(_EXTENSION)
        if found is None:
            found = app.extensions[_EXTENSION] = Courier(app)
        return found  # type: ignore[no-any-return]


def deliver_soon(message_id: str) -> None:
    """Try to deliver a committed message now, in the background; on failure the retry
    loop (:func:`deliver_due`) takes over."""
    courier(current_app._get_current_object()).submit(message_id)  # type: ignore[attr-defined]


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
