"""The mail outbox and SMTP delivery: real aiosmtpd servers (plain, STARTTLS with
login, implicit TLS), an outage and recovery, back-off and dead letters, no double
sending from concurrent delivery loops, and the development console and page."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest
from flask import Flask, g
from flask.testing import FlaskClient
from sqlalchemy import select

from idp.mail import outbox, smtp
from idp.mail.render import build_message
from idp.store import outbox_repo
from idp.store.db import db
from idp.store.models import OutboxMessage, utcnow
from tests.support.login import add_protocol_stand_in, start, submit_code, submit_email
from tests.support.slapd import make_tls_files
from tests.support.smtp import SmtpSink, code_in, html_of, text_of

EMAIL = "ann@corp.example"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def settings_overrides(smtp_server: SmtpSink) -> dict[str, object]:
    return {"smtp_url": smtp_server.url}


@pytest.fixture
def web(app: Flask, client: FlaskClient) -> Iterator[FlaskClient]:
    add_protocol_stand_in(app)
    yield client
    outbox.courier(app).drain()


def enqueue(app: Flask, to: str = EMAIL, lang: str = "en") -> str:
    with app.test_request_context():
        return outbox.enqueue_email(
            to, "code", lang,
            {"code": "123456", "minutes": 10, "client_name": "Shop",
             "expires_at": utcnow() + timedelta(minutes=10)},
        )


def after_first_lease() -> datetime:
    """A moment when the first lease of a message enqueued now has run out."""
    return utcnow() + outbox.FIRST_LEASE + timedelta(seconds=1)


def message(app: Flask, message_id: str) -> OutboxMessage:
    with app.app_context():
        row = outbox_repo.get(message_id)
        assert row is not None
        db.session.expunge(row)
        return row


def test_code_mail_is_multipart_with_text_and_html(app: Flask, web: FlaskClient,
                                                   smtp_server: SmtpSink) -> None:
    login = start(web, client_name="Office Supplies Ltd")
    submit_email(web, login, EMAIL)
    mail = smtp_server.wait_for(1)[0]
    assert mail.get_content_type() == "multipart/alternative"
    assert mail["To"] == EMAIL
    assert mail["From"] == app.extensions["unitgate"].settings.mail_from
    assert mail["Subject"] == "Your Unitgate sign-in code"
    assert mail["Auto-Submitted"] == "auto-generated"
    assert mail["Message-ID"] and mail["Date"]
    code = code_in(mail)
    text, html = text_of(mail), html_of(mail)
    assert code in html and "Office Supplies Ltd" in text
    assert "10 minutes" in text and "did not ask for this code" in text
    assert code not in mail["Subject"]


def test_mail_in_the_users_language(app: Flask, web: FlaskClient,
                                    smtp_server: SmtpSink) -> None:
    resp = web.get("/_test/start?lang=de")
    login = resp.headers["Location"].split("?")[0]
    web.get(login + "?lang=de")  # the German choice is remembered in ug_lang
    submit_email(web, login, EMAIL)
    mail = smtp_server.wait_for(1)[0]
    assert mail["Subject"] == "Ihr Unitgate-Anmeldecode"
    assert "Minuten gültig" in text_of(mail)
    assert 'lang="de"' in html_of(mail)


def test_body_sealed_in_the_database_and_dropped_after_delivery(
    app: Flask, smtp_server: SmtpSink
) -> None:
    # stop the server so the message stays in the outbox with its body
    smtp_server.stop()
    message_id = enqueue(app)
    row = message(app, message_id)
    assert "123456" not in json.dumps(row.payload)
    assert row.payload["body"].startswith("v1.")
    smtp_server.start()
    assert outbox.deliver_due(app, 10, now=after_first_lease()) == 1
    row = message(app, message_id)
    assert row.status == "sent" and "body" not in row.payload
    assert code_in(smtp_server.wait_for(1)[0]) == "123456"


def test_smtp_outage_loses_nothing(app: Flask, web: FlaskClient,
                                   smtp_server: SmtpSink) -> None:
    smtp_server.stop()
    login = start(web)
    submit_email(web, login, EMAIL)
    outbox.courier(app).drain()  # the immediate attempt failed
    with app.app_context():
        row = db.session.scalars(select(OutboxMessage)).one()
        assert row.status == "pending" and row.attempts == 1
        assert row.last_error and row.next_attempt_at > utcnow()
        due_at = row.next_attempt_at
    assert outbox.deliver_due(app, 10) == 0  # not due yet: nothing claimed
    smtp_server.start()  # the server comes back on the same port
    assert outbox.deliver_due(app, 10, now=due_at) == 1
    mail = smtp_server.wait_for(1)[0]
    with app.app_context():
        row = db.session.scalars(select(OutboxMessage)).one()
        assert row.status == "sent" and row.sent_at is not None
    # and the code in the late mail still signs in
    resp = submit_code(web, login, code_in(mail))
    assert resp.status_code == 303 and not resp.headers["Location"].endswith("/code")


def test_backoff_then_dead_with_last_error(app: Flask, smtp_server: SmtpSink) -> None:
    smtp_server.stop()
    message_id = enqueue(app)
    now = after_first_lease()
    delays = []
    for attempt in range(1, outbox.MAX_ATTEMPTS + 1):
        assert outbox.deliver_due(app, 10, now=now) == 0
        row = message(app, message_id)
        assert row.attempts == attempt
        if attempt < outbox.MAX_ATTEMPTS:
            assert row.status == "pending"
            delays.append(row.next_attempt_at - now)
            now = row.next_attempt_at
    assert row.status == "dead" and row.last_error and "Error" in row.last_error
    assert all(b > a for a, b in pairwise(delays))  # exponential
    assert delays[0] == outbox.retry_delay(1)
    assert outbox.deliver_due(app, 10, now=now + timedelta(days=1)) == 0  # dead stays dead


def test_expired_code_mail_is_not_sent_late(app: Flask, smtp_server: SmtpSink) -> None:
    smtp_server.stop()
    with app.test_request_context():
        message_id = outbox.enqueue_email(
            EMAIL, "code", "en",
            {"code": "123456", "minutes": 10, "client_name": "Shop",
             "expires_at": utcnow() + timedelta(minutes=10)},
            discard_after=utcnow() + timedelta(minutes=10),
        )
    smtp_server.start()
    assert outbox.deliver_due(app, 10, now=utcnow() + timedelta(minutes=11)) == 0
    row = message(app, message_id)
    assert row.status == "dead" and row.last_error == "expired before delivery"
    assert "body" not in row.payload
    assert smtp_server.messages == []


def test_concurrent_delivery_loops_never_double_send(app: Flask, smtp_server: SmtpSink) -> None:
    smtp_server.stop()
    ids = [enqueue(app, f"u{n}@corp.example") for n in range(12)]
    smtp_server.start()
    barrier = threading.Barrier(3)
    counts: list[int] = []
    later = after_first_lease()

    def loop() -> None:
        barrier.wait()
        counts.append(outbox.deliver_due(app, 50, now=later))

    threads = [threading.Thread(target=loop) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sum(counts) == len(ids)
    received = [m["To"] for m in smtp_server.wait_for(len(ids))]
    assert sorted(received) == sorted(f"u{n}@corp.example" for n in range(12))
    assert all(message(app, i).status == "sent" for i in ids)


def test_first_lease_keeps_retry_loops_off_a_fresh_message(app: Flask,
                                                          smtp_server: SmtpSink) -> None:
    message_id = enqueue(app)  # never handed to the courier
    row = message(app, message_id)
    assert row.status == "sending" and row.attempts == 0
    assert outbox.deliver_due(app, 10) == 0  # leased to the enqueuing process
    assert smtp_server.messages == []
    assert outbox.deliver_due(app, 10, now=after_first_lease()) == 1
    assert [m["To"] for m in smtp_server.wait_for(1)] == [EMAIL]
    assert message(app, message_id).status == "sent"


def test_courier_and_retry_loops_deliver_each_message_once(app: Flask,
                                                           smtp_server: SmtpSink) -> None:
    loops = [outbox.start_delivery_thread(app, interval=0.001) for _ in range(2)]
    try:
        with app.test_request_context():
            for n in range(10):
                message_id = outbox.enqueue_email(
                    f"u{n}@corp.example", "code", "en",
                    {"code": "123456", "minutes": 10, "client_name": "Shop",
                     "expires_at": utcnow() + timedelta(minutes=10)},
                )
                outbox.deliver_soon(message_id)
        outbox.courier(app).drain()
    finally:
        for loop in loops:
            loop.stop()
    received = sorted(m["To"] for m in smtp_server.wait_for(10))
    assert received == sorted(f"u{n}@corp.example" for n in range(10))
    assert outbox.deliver_due(app, 50, now=after_first_lease()) == 0
    assert len(smtp_server.messages) == 10
    with app.app_context():
        assert outbox_repo.count_by_status() == {"sent": 10}


def test_stale_hand_off_is_left_to_the_retry_loop(app: Flask, smtp_server: SmtpSink) -> None:
    with app.test_request_context():
        message_id = enqueue(app)
        hand_off = g.get(outbox._HAND_OFFS)[message_id]
    late = hand_off.lease_until - outbox.FIRST_LEASE / 2 + timedelta(seconds=1)
    with app.app_context():
        assert outbox.deliver_handed_off(hand_off, now=late) is False
    assert smtp_server.messages == []
    assert outbox.deliver_due(app, 10, now=after_first_lease()) == 1
    assert len(smtp_server.wait_for(1)) == 1


EXIT_SCRIPT = """
from datetime import timedelta
from idp.app import create_app
from idp.mail import outbox
from idp.store.models import utcnow
app = create_app()
with app.test_request_context():
    message_id = outbox.enqueue_email(
        "exit@corp.example", "code", "en",
        {"code": "654321", "minutes": 10, "client_name": "Shop",
         "expires_at": utcnow() + timedelta(minutes=10)})
    outbox.deliver_soon(message_id)
print(message_id)
"""  # ... and the interpreter exits at once, with the mail still in the courier


def test_queued_mail_is_sent_before_a_normal_exit(app: Flask, smtp_server: SmtpSink) -> None:
    settings = app.extensions["unitgate"].settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    env.update(
        IDP_ISSUER=settings.issuer, IDP_DATABASE_URL=settings.database_url,
        IDP_MASTER_KEY=settings.master_key, IDP_SMTP_URL=smtp_server.url,
        IDP_REDIS_PREFIX=settings.redis_prefix, IDP_LOG_LEVEL="WARNING",
    )
    if settings.redis_url:
        env["IDP_REDIS_URL"] = settings.redis_url
    done = subprocess.run([sys.executable, "-c", EXIT_SCRIPT], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert code_in(smtp_server.wait_for(1)[0]) == "654321"
    assert message(app, done.stdout.split()[-1]).status == "sent"


def test_delivery_thread_picks_up_due_messages(app: Flask, smtp_server: SmtpSink) -> None:
    smtp_server.stop()
    enqueue(app)
    smtp_server.start()
    with app.app_context():
        db.session.execute(
            OutboxMessage.__table__.update().values(next_attempt_at=utcnow())
        )
        db.session.commit()
    handle = outbox.start_delivery_thread(app, interval=0.05)
    try:
        assert smtp_server.wait_for(1)[0]["To"] == EMAIL
    finally:
        handle.stop()
    assert not handle.thread.is_alive()


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[Path, Path, Path]:
    return make_tls_files(tmp_path, ["127.0.0.1"])


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
@pytest.mark.parametrize("mode", ["starttls", "smtps"])
def test_tls_and_login(app: Flask, tls_files: tuple[Path, Path, Path], mode: str) -> None:
    sink = SmtpSink(tls=mode, login=("mailer", "p@ss:word"), tls_files=tls_files)
    sink.start()
    try:
        url = sink.url
        assert "p%40ss%3Aword@" in url
        target = smtp.parse_smtp_url(url)
        assert target.password == "p@ss:word" and "p@ss" not in repr(target)
        smtp.send(target, build_message("Unitgate <no-reply@unitgate.localhost>", EMAIL,
                                        "Hi", "text", "<p>html</p>"))
        assert sink.wait_for(1)[0]["Subject"] == "Hi"
        with pytest.raises(smtp.SmtpDeliveryError):
            # (aiosmtpd answers a failed login by going silent: a short timeout)
            bad = url.replace("p%40ss", "wrong").replace("timeout=5", "timeout=1")
            smtp.send(smtp.parse_smtp_url(bad),
                      build_message("a@unitgate.localhost", EMAIL, "Hi", "t", "h"))
        untrusted = url.split("?")[0] + "?timeout=5"  # system trust store: test CA unknown
        with pytest.raises(smtp.SmtpDeliveryError):
            smtp.send(smtp.parse_smtp_url(untrusted),
                      build_message("a@unitgate.localhost", EMAIL, "Hi", "t", "h"))
    finally:
        sink.stop()
    assert len(sink.messages) == 1


@pytest.mark.parametrize("url", [
    "http://mail.example:25", "smtp://", "smtp://user:pw@mail.example:25",
    "smtp://mail.example:notaport", "smtps://mail.example?timeout=soon",
])
def test_unusable_smtp_urls_are_refused(url: str) -> None:
    with pytest.raises(smtp.SmtpConfigError):
        smtp.parse_smtp_url(url)


def test_smtp_url_defaults() -> None:
    assert smtp.parse_smtp_url("smtp://relay.internal").port == 25
    assert smtp.parse_smtp_url("smtp+starttls://u:p@relay.internal").port == 587
    assert smtp.parse_smtp_url("smtps://u:p@relay.internal").port == 465


class TestDevelopmentMode:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {"dev_mode": True, "smtp_url": None}

    def test_code_on_console_and_dev_outbox(self, app: Flask, web: FlaskClient,
                                            capfd: pytest.CaptureFixture[str]) -> None:
        login = start(web)
        submit_email(web, login, EMAIL)
        outbox.courier(app).drain()
        err = capfd.readouterr().err
        assert "DEVELOPMENT MAIL" in err and EMAIL in err
        page = web.get("/dev/outbox")
        assert page.status_code == 200
        html = page.get_data(as_text=True)
        assert EMAIL in html and "Your Unitgate sign-in code" in html
        code = next(line.strip() for line in err.splitlines() if line.strip().isdigit())
        assert code in html
        assert submit_code(web, login, code).headers["Location"].endswith("/profile")

    def test_each_mail_reaches_the_console_once(self, app: Flask, web: FlaskClient,
                                                 capfd: pytest.CaptureFixture[str],
                                                 caplog: pytest.LogCaptureFixture) -> None:
        """The console shows a development mail once: printed, not also logged with
        its body (in development both end on the same terminal)."""
        caplog.set_level("DEBUG")
        login = start(web)
        submit_email(web, login, EMAIL)
        outbox.courier(app).drain()
        console = capfd.readouterr().err + caplog.text
        assert console.count("DEVELOPMENT MAIL") == 1
        assert console.count("Your sign-in code for") == 1


def test_no_dev_outbox_outside_development(client: FlaskClient) -> None:
    assert client.get("/dev/outbox").status_code == 404
