"""CPU per one-time-code e-mail, part by part, in-process and unprofiled.

``python -m bench.mail_cost [mails] [--postgres]`` sets up a fresh database like
:mod:`bench.journey_profile` (``idp init`` + ``idp demo``, ``IDP_SMTP_URL`` at a
local aiosmtpd sink) and reports the calling thread's CPU (``time.thread_time``, the
sink runs in its own thread) per mail for: rendering the bodies, sealing, the outbox
insert, the whole :func:`enqueue_email`; a claim by id (as the retry loop does),
opening the body, the MIME build, the SMTP hand-over (with the serialisation, before
it moved into the build), marking it sent, the whole :func:`deliver_one`, the
courier's own path from memory (:func:`deliver_handed_off`, where it exists), the
courier thread's CPU per mail for a burst of ``mails`` submitted at once, and one
empty :func:`deliver_due` poll. Best of 5 batches.
With ``--postgres`` the database is a throw-away PostgreSQL database on
127.0.0.1:5432 (created and dropped)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.journey_profile import _setup
from bench.server import free_port
from bench.smtp_sink import SmtpSink

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/"


def _best(fn: Callable[[], Any], n: int, batches: int = 5) -> float:
    """Best-of-``batches`` CPU milliseconds per call of ``fn``."""
    results = []
    for _ in range(batches):
        started = time.thread_time()
        for _ in range(n):
            fn()
        results.append((time.thread_time() - started) / n * 1000)
    return min(results)


def _psql(sql: str) -> None:
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", sql], check=True)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 300
    postgres = "--postgres" in sys.argv
    codes: dict[str, str] = {}
    sink = SmtpSink(codes, free_port())
    sink.start()
    dbname = f"mailcost_{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp:
        if postgres:
            _psql(f"CREATE DATABASE {dbname}")
            os.environ["IDP_DATABASE_URL"] = PG + dbname
        try:
            _run(Path(tmp), sink, n, postgres)
        finally:
            if postgres:
                _psql(f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")
    sink.stop()


def _run(workdir: Path, sink: SmtpSink, n: int, postgres: bool) -> None:
    saved = os.environ.get("IDP_DATABASE_URL")
    env, _demo = _setup(workdir, sink.port)
    if postgres and saved:
        env["IDP_DATABASE_URL"] = saved
        subprocess.run([sys.executable, "-m", "idp.cli", "init", "--json"], env=env,
                       check=True, capture_output=True)
    os.environ.update(env)
    from idp.app import create_app
    from idp.mail import outbox, render
    from idp.services import services, settings
    from idp.store import outbox_repo
    from idp.store.models import utcnow
    from idp.store.unit_of_work import atomic

    app = create_app()
    from idp.mail import smtp

    opened = [0]
    real_open = smtp._open

    def counting_open(target: Any) -> Any:
        opened[0] += 1
        return real_open(target)

    smtp._open = counting_open  # count SMTP connections (is the session reused?)
    print(f"database: {'postgresql' if postgres else 'sqlite'}; jinja auto_reload="
          f"{app.jinja_env.auto_reload}; {n} mails per batch, best of 5")
    context = {"code": "123456", "minutes": 10, "client_name": "Demo Shop",
               "expires_at": utcnow() + timedelta(minutes=10)}
    rows: list[tuple[str, float]] = []
    with app.test_request_context("/"):
        for lang in ("en", "de"):
            rows.append((f"render_email ({lang})",
                         _best(lambda lang=lang: render.render_email("code", lang, **context), n)))
        rendered = render.render_email("code", "en", **context)
        body = json.dumps({"text": rendered.text, "html": rendered.html}).encode()
        rows.append(("seal body (AES-GCM)", _best(
            lambda: services().sealer.seal(body, "outbox:x"), n)))
    ids: list[str] = []
    hand_offs: list[Any] = []  # what deliver_soon would hand to the courier
    first_lease = getattr(outbox, "FIRST_LEASE", timedelta(0))  # (absent before)

    def enqueue() -> float:
        """One enqueue in a request context of its own (as in a request); its CPU."""
        with app.test_request_context("/"):
            from flask import g

            started = time.thread_time()
            ids.append(outbox.enqueue_email(
                "a@acme-demo.example", "code", "en", context,
                discard_after=utcnow() + timedelta(minutes=10)))
            spent = time.thread_time() - started
            hand_offs.append((g.get("unitgate_outbox_hand_offs") or {}).get(ids[-1]))
            return spent

    parts = ("claim", "open_body", "build_message", "SMTP hand-over", "mark_sent",
             "deliver_one", "deliver_handed_off")

    def deliver(message_id: str, acc: dict[str, float]) -> None:
        """deliver_one's steps, each timed, in an app context of its own (as the
        courier runs it); then the same message kind again through deliver_one."""
        with app.app_context():
            t0 = time.thread_time()
            now = utcnow() + first_lease  # as the retry loop, when the first lease ended
            row = outbox_repo.claim(message_id, now, outbox.LEASE)
            t1 = time.thread_time()
            payload = dict(row.payload)
            opened = outbox.open_body(row)
            t2 = time.thread_time()
            message = render.build_message(
                settings().mail_from, payload["to"], payload["subject"],
                opened["text"], opened["html"], row.created_at)
            t3 = time.thread_time()
            outbox._smtp_session(settings().smtp_url or "").send(message)
            t4 = time.thread_time()
            payload.pop("body", None)
            with atomic():
                outbox_repo.mark_sent(row.id, payload)
            t5 = time.thread_time()
        for name, spent in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4),
                               strict=False):
            acc[name] = acc.get(name, 0.0) + spent

    best_enqueue = float("inf")
    best: dict[str, float] = {}
    for _ in range(5):
        ids.clear()
        spent = sum(enqueue() for _ in range(n))
        best_enqueue = min(best_enqueue, spent / n * 1000)
        acc: dict[str, float] = {}
        for message_id in ids:
            deliver(message_id, acc)
        ids.clear()
        for _ in range(n):
            enqueue()
        started = time.thread_time()
        for message_id in ids:
            with app.app_context():
                outbox.deliver_one(message_id, utcnow() + first_lease)
        acc["deliver_one"] = time.thread_time() - started
        if hasattr(outbox, "deliver_handed_off"):
            hand_offs.clear()
            for _ in range(n):
                enqueue()
            started = time.thread_time()
            for hand_off in hand_offs:
                with app.app_context():
                    outbox.deliver_handed_off(hand_off)
            acc["deliver_handed_off"] = time.thread_time() - started
        for name, total in acc.items():
            best[name] = min(best.get(name, float("inf")), total / n * 1000)
    rows.append(("enqueue_email total (render+seal+insert)", best_enqueue))
    labels = {"deliver_one": "deliver_one total (claim path, +app context)",
              "deliver_handed_off": "deliver_handed_off total (courier path, +app context)"}
    for name in parts:
        if name in best:
            rows.append((labels.get(name, name), best[name]))
        if name == "SMTP hand-over":
            rows.append(("  MIME build + hand-over (serialising is in one of them)",
                         best["build_message"] + best[name]))
    rows.append(("deliver_due, empty outbox (one poll)",
                 _best(lambda: outbox.deliver_due(app, 50), n)))

    # the courier thread: submit n messages, its thread's CPU per message
    ids.clear()
    hand_offs.clear()
    for _ in range(n):
        enqueue()
    courier = outbox.courier(app)
    cpu: dict[str, float] = {}
    original = courier._run

    def timed_run() -> None:
        started = time.thread_time()
        try:
            original()
        finally:
            cpu["courier"] = cpu.get("courier", 0.0) + time.thread_time() - started

    courier._run = timed_run  # type: ignore[method-assign]
    received = sink.handler.received
    for message_id, hand_off in zip(ids, hand_offs, strict=True):
        if hand_off is None:
            courier.submit(message_id)
        else:
            courier.submit(message_id, hand_off)  # type: ignore[call-arg]
    courier.drain()
    outbox.COURIER_IDLE_SECONDS = 0.01  # let the thread end so its CPU is counted
    courier.submit("none")
    courier.drain()
    deadline = time.monotonic() + 10
    while "courier" not in cpu and time.monotonic() < deadline:
        time.sleep(0.05)
    delivered = sink.handler.received - received
    rows.append((f"courier thread per mail ({delivered} delivered)",
                 cpu.get("courier", float("nan")) / max(1, delivered) * 1000))
    print(f"SMTP connections opened for {sink.handler.received} mails: {opened[0]}")
    width = max(len(name) for name, _ in rows)
    for name, ms in rows:
        print(f"  {name:<{width}}  {ms:7.3f} ms")
    threading.Event().wait(0.1)


if __name__ == "__main__":
    main()
