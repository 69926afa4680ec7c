"""SECURITY.md "E-mail one-time codes": each rule as its own test, through the real
login pages, a real SMTP server (aiosmtpd) and both storage backends."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, text

from idp.accounts import lifecycle as accounts
from idp.app import create_app
from idp.ephemeral import EphemeralUnavailable
from idp.factors import email_otp
from idp.factors.email_otp import RedeemOutcome
from idp.interaction import pending as interaction
from idp.mail.outbox import courier
from idp.services import ephemeral, hasher
from idp.store.db import db
from idp.store.models import Account, EphemeralEntry
from tests.support.apps import clean, make_settings
from tests.support.backends import Backend
from tests.support.login import (
    add_protocol_stand_in,
    clone,
    csrf_token,
    interaction_id_of,
    path_of,
    start,
    submit_code,
    submit_email,
)
from tests.support.processes import RedisServer
from tests.support.smtp import SmtpSink, code_in

KNOWN = "ann@corp.example"


@pytest.fixture
def extra_settings() -> dict[str, object]:
    """Parametrised by tests that need other limits."""
    return {}


@pytest.fixture
def settings_overrides(smtp_server: SmtpSink, extra_settings: dict[str, object]
                       ) -> dict[str, object]:
    return {"smtp_url": smtp_server.url, **extra_settings}


@pytest.fixture
def web(app: Flask, client: FlaskClient) -> Iterator[FlaskClient]:
    add_protocol_stand_in(app)
    yield client
    courier(app).drain()


def make_account(app: Flask, email: str = KNOWN, **fields: object) -> str:
    with app.app_context():
        account = Account(email=email, email_verified=True, given_name="Ann",
                          family_name="Example", **fields)
        db.session.add(account)
        db.session.commit()
        return account.id


def request_code(web: FlaskClient, smtp: SmtpSink, email: str = KNOWN,
                 **params: str) -> tuple[str, str]:
    """Start an interaction, ask for a code; (login path, code from the mail)."""
    before = len(smtp.messages)
    login = start(web, **params)
    resp = submit_email(web, login, email)
    assert resp.status_code == 303 and path_of(resp) == login + "/code"
    return login, code_in(smtp.last_to(email, after=before))


def other_code(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def stored_record(app: Flask, login: str) -> dict[str, object]:
    with app.app_context():
        record = ephemeral().get(f"otp:{interaction_id_of(login)}")
        assert record is not None
        return dict(record)


def all_stored_text(app: Flask) -> str:
    """Everything in the ephemeral store and the database tables a code could land in."""
    with app.app_context():
        settings = app.extensions["unitgate"].settings
        parts: list[str] = []
        if settings.redis_url:
            import redis

            r = redis.Redis.from_url(settings.redis_url)
            for key in r.scan_iter(match=settings.redis_prefix + "*"):
                if r.type(key) == b"string":
                    parts.append(r.get(key).decode())  # type: ignore[union-attr]
        else:
            parts += list(db.session.scalars(select(EphemeralEntry.value)))
        for table in ("outbox", "audit_events", "accounts", "sessions"):
            for row in db.session.execute(text(f"SELECT * FROM {table}")):
                parts.append(json.dumps([str(v) for v in row]))
        return "\n".join(parts)


def test_code_is_six_csprng_digits(app: Flask, web: FlaskClient, smtp_server: SmtpSink) -> None:
    _login, code = request_code(web, smtp_server)
    assert re.fullmatch(r"\d{6}", code)
    with app.app_context():
        codes = {email_otp.new_code() for _ in range(2000)}
    assert all(re.fullmatch(r"\d{6}", c) for c in codes)
    assert len(codes) > 1900  # 2000 draws from 10**6: collisions are rare
    assert {c[0] for c in codes} == set("0123456789")  # leading zeros kept


def test_code_stored_only_as_keyed_hash(app: Flask, web: FlaskClient,
                                        smtp_server: SmtpSink) -> None:
    login, code = request_code(web, smtp_server)
    courier(app).drain()
    record = stored_record(app, login)
    with app.app_context():
        expected = hasher().hash(code, f"email-otp:{interaction_id_of(login)}:{KNOWN}")
    assert record["hash"] == expected
    assert code not in all_stored_text(app)


def test_code_valid_at_most_ten_minutes(app: Flask, web: FlaskClient,
                                        smtp_server: SmtpSink) -> None:
    login, code = request_code(web, smtp_server)
    record = stored_record(app, login)
    assert float(record["expires_at"]) - time.time() <= 600  # type: ignore[arg-type]
    with app.test_request_context(headers={"Cookie": f"ug_ix={web.get_cookie('ug_ix').value}"}):  # type: ignore[union-attr]
        ix = interaction.load(interaction_id_of(login))
        assert ix is not None
        late = email_otp.redeem_code(ix, code, now=time.time() + 601)
        assert late.outcome is RedeemOutcome.EXPIRED
    # the store itself forgets the code after its lifetime, too
    with app.app_context():
        settings = app.extensions["unitgate"].settings
        key = f"otp:{interaction_id_of(login)}"
        if settings.redis_url:
            import redis

            ttl = redis.Redis.from_url(settings.redis_url).ttl(settings.redis_prefix + key)
        else:
            ttl = db.session.get(EphemeralEntry, key).expires_at - time.time()  # type: ignore[union-attr]
        assert 0 < ttl <= 600


@pytest.mark.parametrize("extra_settings", [{"otp_minutes": 60}])
def test_longer_setting_is_capped_at_ten_minutes(app: Flask) -> None:
    with app.app_context():
        assert email_otp.code_lifetime_seconds() == 600


def test_code_is_single_use(app: Flask, web: FlaskClient, smtp_server: SmtpSink) -> None:
    make_account(app)
    login, code = request_code(web, smtp_server)
    first = submit_code(web, login, code)
    assert first.status_code == 303 and not path_of(first).endswith("/code")
    # a second interaction in the same browser cannot reuse it either
    second_login = start(web, prompt="login")
    submit_email(web, second_login, KNOWN)
    again = submit_code(web, second_login, code)
    assert path_of(again) == second_login + "/code"


def test_code_bound_to_its_interaction(app: Flask, web: FlaskClient,
                                       smtp_server: SmtpSink) -> None:
    make_account(app)
    login_a, code_a = request_code(web, smtp_server)
    login_b, _code_b = request_code(web, smtp_server)
    assert login_a != login_b
    resp = submit_code(web, login_b, code_a)
    assert path_of(resp) == login_b + "/code"
    page = web.get(login_b + "/code").get_data(as_text=True)
    assert "not right" in page
    # and A's code still works in A
    assert path_of(submit_code(web, login_a, code_a)) != login_a + "/code"


def test_code_bound_to_its_browser(app: Flask, web: FlaskClient,
                                   smtp_server: SmtpSink) -> None:
    make_account(app)
    login, code = request_code(web, smtp_server)
    stranger = app.test_client()
    html = stranger.get("/_test/start", follow_redirects=True).get_data(as_text=True)
    resp = stranger.post(login + "/code", data={"csrf_token": csrf_token(html), "code": code})
    assert resp.status_code == 400
    assert "expired" in resp.get_data(as_text=True)


def test_five_wrong_tries_then_the_code_is_gone(app: Flask, web: FlaskClient,
                                                smtp_server: SmtpSink) -> None:
    make_account(app)
    login, code = request_code(web, smtp_server)
    for left in (4, 3, 2, 1):
        submit_code(web, login, other_code(code))
        page = web.get(login + "/code").get_data(as_text=True)
        assert f"{left} more tr" in page
    submit_code(web, login, other_code(code))
    assert "Too many wrong codes" in web.get(login + "/code").get_data(as_text=True)
    resp = submit_code(web, login, code)  # the right code, too late
    assert path_of(resp) == login + "/code"
    page = web.get(login + "/code").get_data(as_text=True)
    # still "too many tries" (issue 16), not "expired or already used"; no Continue
    assert "Too many wrong codes" in page and "expired" not in page
    assert 'id="code"' not in page


def test_fifth_try_may_still_be_right(app: Flask, web: FlaskClient,
                                      smtp_server: SmtpSink) -> None:
    make_account(app)
    login, code = request_code(web, smtp_server)
    for _ in range(4):
        submit_code(web, login, other_code(code))
    assert path_of(submit_code(web, login, code)) != login + "/code"


def test_parallel_redemptions_have_one_winner(app: Flask, web: FlaskClient,
                                              smtp_server: SmtpSink) -> None:
    make_account(app)
    login, code = request_code(web, smtp_server)
    token = csrf_token(web.get(login + "/code").get_data(as_text=True))
    browsers = [clone(app, web) for _ in range(8)]
    barrier = threading.Barrier(len(browsers))
    results: list[tuple[str, bool]] = []

    def submit(browser: FlaskClient) -> None:
        barrier.wait()
        resp = browser.post(login + "/code", data={"csrf_token": token, "code": code})
        signed_in = any(h.startswith("ug_session=") for h in resp.headers.getlist("Set-Cookie"))
        results.append((path_of(resp), signed_in))

    threads = [threading.Thread(target=submit, args=(b,)) for b in browsers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == len(browsers)
    # Exactly one submission redeemed the code and got a session. The others were
    # refused, or (arriving after the winner finished) found the interaction already
    # authenticated and were sent on without a session of their own.
    assert sum(signed_in for _path, signed_in in results) == 1, results
    with app.app_context():
        assert len(list(db.session.execute(text("SELECT id_hash FROM sessions")))) == 1


@pytest.mark.parametrize("extra_settings", [{"otp_sends_per_address": 3}])
def test_sends_throttled_per_address_and_requester(app: Flask, client: FlaskClient,
                                                   smtp_server: SmtpSink) -> None:
    add_protocol_stand_in(app)
    ip = {"REMOTE_ADDR": "10.0.0.1"}
    for _ in range(3):
        login = start(client)
        assert path_of(submit_email(client, login, KNOWN, environ_base=ip)) == login + "/code"
    login = start(client)
    resp = submit_email(client, login, KNOWN, environ_base=ip)
    assert path_of(resp) == login
    assert "Too many codes" in client.get(login).get_data(as_text=True)
    # another requester of the same address is not affected
    resp = submit_email(client, login, KNOWN, environ_base={"REMOTE_ADDR": "10.0.0.2"})
    assert path_of(resp) == login + "/code"
    courier(app).drain()
    assert len(smtp_server.wait_for(4)) == 4


@pytest.mark.parametrize("extra_settings", [{"otp_sends_per_address": 2,
                                             "otp_sends_per_address_unknown": 3}])
def test_sends_per_address_capped_for_unknown_requesters(
    app: Flask, client: FlaskClient, smtp_server: SmtpSink
) -> None:
    add_protocol_stand_in(app)
    sent = []
    for ip in ("10.0.0.1", "10.0.0.1", "10.0.0.1", "10.0.0.2", "10.0.0.3"):
        login = start(client)
        resp = submit_email(client, login, KNOWN, environ_base={"REMOTE_ADDR": ip})
        sent.append(path_of(resp) == login + "/code")
    # the third from 10.0.0.1 is refused by its own limit and uses none of the cap
    assert sent == [True, True, False, True, False]
    courier(app).drain()
    assert len(smtp_server.wait_for(3)) == 3


@pytest.mark.parametrize("extra_settings", [{"otp_sends_per_ip": 2}])
def test_sends_throttled_per_ip(app: Flask, client: FlaskClient,
                                smtp_server: SmtpSink) -> None:
    add_protocol_stand_in(app)
    ip = {"REMOTE_ADDR": "192.0.2.7"}
    for n in range(2):
        login = start(client)
        assert path_of(submit_email(client, login, f"u{n}@corp.example",
                                    environ_base=ip)) == login + "/code"
    login = start(client)
    resp = submit_email(client, login, "u9@corp.example", environ_base=ip)
    assert path_of(resp) == login
    # another IP is not affected
    resp = submit_email(client, login, "u9@corp.example",
                        environ_base={"REMOTE_ADDR": "192.0.2.8"})
    assert path_of(resp) == login + "/code"
    # an IPv6 client counts by its /64
    for n, addr in enumerate(("2001:db8::1", "2001:db8::2", "2001:db8::ffff")):
        login = start(client)
        resp = submit_email(client, login, f"v{n}@corp.example",
                            environ_base={"REMOTE_ADDR": addr})
        assert (path_of(resp) == login + "/code") is (n < 2), addr
    resp = submit_email(client, login, "v9@corp.example",
                        environ_base={"REMOTE_ADDR": "2001:db8:0:1::1"})
    assert path_of(resp) == login + "/code"


def test_resend_invalidates_previous_code_and_says_so(app: Flask, web: FlaskClient,
                                                      smtp_server: SmtpSink) -> None:
    make_account(app)
    login, first = request_code(web, smtp_server)
    before = len(smtp_server.messages)
    token = csrf_token(web.get(login + "/code").get_data(as_text=True))
    resp = web.post(login + "/resend", data={"csrf_token": token})
    assert resp.status_code == 303 and path_of(resp) == login + "/code"
    page = web.get(login + "/code").get_data(as_text=True)
    assert "previous code no longer works" in page
    second = code_in(smtp_server.last_to(KNOWN, after=before))
    if second != first:
        assert path_of(submit_code(web, login, first)) == login + "/code"
    assert path_of(submit_code(web, login, second)) != login + "/code"


def _normalise(html: str) -> str:
    html = re.sub(r'value="[^"]*"', 'value=""', html)
    html = re.sub(r"/interaction/[A-Za-z0-9_-]+", "/interaction/ID", html)
    return html.replace("ann@corp.example", "EMAIL").replace("nobody@corp.example", "EMAIL") \
        .replace("locked@corp.example", "EMAIL").replace("soft@corp.example", "EMAIL")


def _journey(web: FlaskClient, email: str) -> list[tuple[int, str, str]]:
    """Status, redirect target and normalised page of each step for ``email``."""
    seen: list[tuple[int, str, str]] = []
    login = start(web, prompt="login")
    resp = submit_email(web, login, email)
    seen.append((resp.status_code, path_of(resp).replace(login, "L"), ""))
    page = web.get(login + "/code")
    seen.append((page.status_code, "", _normalise(page.get_data(as_text=True))))
    resp = submit_code(web, login, "000000" if email else "")
    seen.append((resp.status_code, path_of(resp).replace(login, "L"), ""))
    page = web.get(login + "/code")
    seen.append((page.status_code, "", _normalise(page.get_data(as_text=True))))
    return seen


def test_same_answers_for_known_unknown_and_locked_addresses(
    app: Flask, web: FlaskClient, smtp_server: SmtpSink
) -> None:
    make_account(app)
    make_account(app, "locked@corp.example", status="blocked")
    make_account(app, "soft@corp.example", failed_code_attempts=100)  # soft-locked
    known = _journey(web, KNOWN)
    unknown = _journey(web, "nobody@corp.example")
    locked = _journey(web, "locked@corp.example")
    soft = _journey(web, "soft@corp.example")
    assert known == unknown == locked == soft
    courier(app).drain()
    # every address got a mail; the blocked one gets no code in it, the soft-locked
    # one a 16-digit code instead of 6 digits
    assert {m["To"] for m in smtp_server.messages} == {
        KNOWN, "nobody@corp.example", "locked@corp.example", "soft@corp.example"}
    locked_mail = smtp_server.last_to("locked@corp.example")
    assert not re.search(r"\b\d{6}\b", locked_mail.get_body(("plain",)).get_content())  # type: ignore[union-attr]
    soft_mail = smtp_server.last_to("soft@corp.example").get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert re.search(r"\b\d{4} \d{4} \d{4} \d{4}\b", soft_mail)
    assert not re.search(r"\b\d{6}\b", soft_mail)


@pytest.mark.parametrize("extra_settings", [{"otp_sends_per_address": 1}])
def test_same_answers_when_a_limit_hits(app: Flask, web: FlaskClient,
                                        smtp_server: SmtpSink) -> None:
    make_account(app)
    make_account(app, "locked@corp.example", status="blocked")
    make_account(app, "soft@corp.example", failed_code_attempts=100)
    seen = []
    for email in (KNOWN, "nobody@corp.example", "locked@corp.example", "soft@corp.example"):
        steps = []
        for _ in range(2):  # the second request of this requester hits its limit
            login = start(web, prompt="login")
            resp = submit_email(web, login, email)
            page = web.get(path_of(resp))
            steps.append((resp.status_code, path_of(resp).replace(login, "L"),
                          page.status_code, _normalise(page.get_data(as_text=True))))
        assert steps[1][1] == "L" and "Too many codes" in steps[1][3]
        seen.append(steps)
    assert seen[0] == seen[1] == seen[2] == seen[3]


def test_unknown_address_gets_a_code_that_creates_the_wallet(
    app: Flask, web: FlaskClient, smtp_server: SmtpSink
) -> None:
    login, code = request_code(web, smtp_server, "new@corp.example")
    resp = submit_code(web, login, code)
    assert path_of(resp) == login + "/profile"
    with app.app_context():
        assert accounts.by_email("new@corp.example") is None  # created only with a profile


@pytest.mark.parametrize(
    "extra_settings", [{"otp_sends_per_address": 1000, "otp_sends_per_address_unknown": 1000}]
)
def test_soft_lock_after_100_failures_and_admin_unlock(
    app: Flask, client: FlaskClient, smtp_server: SmtpSink
) -> None:
    add_protocol_stand_in(app)
    account_id = make_account(app)
    # a code requested in another sign-in before the lock-out, left untouched
    spare_login = start(client)
    token = csrf_token(client.get(spare_login).get_data(as_text=True))
    client.post(spare_login + "/email", data={"csrf_token": token, "email": KNOWN})
    spare_code = code_in(smtp_server.last_to(KNOWN))
    login = start(client)

    def wrong_round(tries: int) -> str:
        before = len(smtp_server.messages)
        client.post(login + "/email", data={"csrf_token": token, "email": KNOWN})
        code = code_in(smtp_server.last_to(KNOWN, after=before))
        for _ in range(tries):
            client.post(login + "/code", data={"csrf_token": token, "code": other_code(code)})
        return code

    for _ in range(19):
        wrong_round(5)
    code = wrong_round(4)  # 99 consecutive failures, the code still live
    with app.app_context():
        account = db.session.get(Account, account_id)
        assert account is not None
        assert account.failed_code_attempts == 99
    client.post(login + "/code", data={"csrf_token": token, "code": "999999"
                                       if code != "999999" else "999998"})
    with app.app_context():
        account = db.session.get(Account, account_id)
        assert account is not None and account.failed_code_attempts == 100
        assert account.locked_at is None and account.can_sign_in  # no hard lock
    # soft-locked: a valid, untried 6-digit code of this (unknown) browser is refused ...
    resp = client.post(spare_login + "/code", data={"csrf_token": token, "code": spare_code})
    assert path_of(resp) == spare_login + "/code"
    # ... and a new code request gets a 16-digit code, which proves the mailbox
    before = len(smtp_server.messages)
    resp = client.post(login + "/email", data={"csrf_token": token, "email": KNOWN})
    assert path_of(resp) == login + "/code"
    text = smtp_server.last_to(KNOWN, after=before).get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert not re.search(r"\b\d{6}\b", text)
    assert re.search(r"\b\d{4} \d{4} \d{4} \d{4}\b", text)
    assert path_of(client.post(login + "/code", data={"csrf_token": token, "code": code})) \
        == login + "/code"
    # an administrator lifts the lock
    with app.app_context():
        assert accounts.unlock(" ANN@corp.example ") is True
        account = db.session.get(Account, account_id)
        assert account is not None
        assert account.locked_at is None and account.failed_code_attempts == 0
    before = len(smtp_server.messages)
    client.post(login + "/email", data={"csrf_token": token, "email": KNOWN})
    code = code_in(smtp_server.last_to(KNOWN, after=before))
    resp = client.post(login + "/code", data={"csrf_token": token, "code": code})
    assert path_of(resp) != login + "/code"


def test_admin_unlock_lifts_a_hard_lock_of_an_earlier_version(
    app: Flask, web: FlaskClient, smtp_server: SmtpSink
) -> None:
    from idp.store.models import utcnow

    make_account(app, failed_code_attempts=100, locked_at=utcnow())
    before = len(smtp_server.messages)
    login = start(web)
    submit_email(web, login, KNOWN)
    text = smtp_server.last_to(KNOWN, after=before).get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "not possible" in text and not re.search(r"\d{4}", text.split("UTC")[-1])
    with app.app_context():
        assert accounts.unlock(KNOWN) is True
    login, code = request_code(web, smtp_server)
    assert path_of(submit_code(web, login, code)) != login + "/code"


def test_good_code_resets_consecutive_failures(app: Flask, web: FlaskClient,
                                               smtp_server: SmtpSink) -> None:
    account_id = make_account(app)
    login, code = request_code(web, smtp_server)
    submit_code(web, login, other_code(code))
    submit_code(web, login, other_code(code))
    with app.app_context():
        assert db.session.get(Account, account_id).failed_code_attempts == 2  # type: ignore[union-attr]
    submit_code(web, login, code)
    with app.app_context():
        assert db.session.get(Account, account_id).failed_code_attempts == 0  # type: ignore[union-attr]


def test_addresses_are_normalised_and_invalid_ones_refused(
    app: Flask, web: FlaskClient, smtp_server: SmtpSink
) -> None:
    login = start(web)
    resp = submit_email(web, login, "  Ann@CORP.Example ")
    assert path_of(resp) == login + "/code"
    assert smtp_server.wait_for(1)[0]["To"] == KNOWN
    for bad in ("", "ann", "ann@", "@corp.example", "ann@corp", "a b@corp.example",
                "ann@@corp.example", "ann@corp..example", "x" * 300 + "@corp.example",
                "ann@corp.example\r\nBcc: evil@example.com"):
        login = start(web)
        resp = submit_email(web, login, bad)
        assert resp.status_code == 303 and path_of(resp) == login, bad
        page = web.get(login).get_data(as_text=True)
        assert 'aria-describedby="email-hint email-error"' in page
        assert 'id="email-error"' in page and "valid e-mail address" in page


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


def test_store_outage_fails_closed_and_recovers(
    migrated: Backend, private_redis: RedisServer, smtp_server: SmtpSink
) -> None:
    app = create_app(make_settings(migrated, redis_url=private_redis.url,
                                   smtp_url=smtp_server.url))
    clean(app)
    add_protocol_stand_in(app)
    web = app.test_client()
    try:
        make_account(app)
        login, code = request_code(web, smtp_server)
        token = csrf_token(web.get(login + "/code").get_data(as_text=True))
        private_redis.stop()
        resp = web.post(login + "/code", data={"csrf_token": token, "code": code})
        assert resp.status_code == 503 and "temporarily unavailable" in resp.get_data(as_text=True)
        assert web.get("/_test/session").status_code == 200
        assert web.get("/_test/session").get_json()["account_id"] is None  # not signed in
        sent = len(smtp_server.messages)
        resp = web.post(login + "/email", data={"csrf_token": token, "email": KNOWN})
        assert resp.status_code == 503
        courier(app).drain()
        assert len(smtp_server.messages) == sent  # no mail for a code that was not stored
        private_redis.start()  # back, empty: the same app recovers without a restart
        assert web.get(login).status_code == 400  # that sign-in is gone, never "valid"
        login, code = request_code(web, smtp_server)
        resp = web.post(login + "/code", data={"csrf_token": token, "code": code})
        assert resp.status_code == 303 and not path_of(resp).endswith("/code")
        device = web.get_cookie("ug_device")
        assert device is not None  # this browser is known for the address now
        private_redis.stop()  # a known browser does not skip the store either
        cookie = {"Cookie": f"ug_device={device.value}"}
        with app.test_request_context(headers=cookie), pytest.raises(EphemeralUnavailable):
            email_otp.requester_for(KNOWN, "192.0.2.1")
        resp = web.post(login + "/email", data={"csrf_token": token, "email": KNOWN})
        assert resp.status_code == 503
    finally:
        courier(app).drain()
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
