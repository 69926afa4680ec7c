"""SECURITY.md "Abuse by strangers" for e-mail codes: nothing a stranger does (wrong
codes, code requests, from other IPs and browsers) stops the person who reads the
mailbox from signing in from their own browser or IP, and a stranger still cannot
guess their way in. Through the real login pages, a real SMTP server (aiosmtpd) and
both storage backends."""

from __future__ import annotations

import re
from collections.abc import Iterator
from email.message import EmailMessage

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from idp.accounts import lifecycle as accounts
from idp.mail.outbox import courier
from idp.store.db import db
from idp.store.models import Account
from tests.support.login import add_protocol_stand_in, csrf_token, path_of, start, submit_email
from tests.support.smtp import CODE_RE, SmtpSink, code_in, text_of
from tests.test_email_otp import KNOWN, all_stored_text, make_account, other_code

LONG_RE = re.compile(r"\b(\d{4} \d{4} \d{4} \d{4})\b")
VICTIM_IP = "198.51.100.10"
STRANGER_IP = "203.0.113.66"
MANY = {"otp_sends_per_address": 1000, "otp_sends_per_address_unknown": 1000}


@pytest.fixture
def extra_settings() -> dict[str, object]:
    """Parametrised by tests that need other limits."""
    return {}


@pytest.fixture
def settings_overrides(smtp_server: SmtpSink, extra_settings: dict[str, object]
                       ) -> dict[str, object]:
    return {"smtp_url": smtp_server.url, **extra_settings}


@pytest.fixture
def stand_in(app: Flask) -> Iterator[Flask]:
    add_protocol_stand_in(app)
    yield app
    courier(app).drain()


def browser(app: Flask, ip: str) -> FlaskClient:
    """A fresh browser (no cookies) whose requests come from ``ip``."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = ip
    return client


def ask(client: FlaskClient, email: str = KNOWN) -> tuple[str, TestResponse]:
    """Start a sign-in and ask for a code; (login path, answer to the POST)."""
    login = start(client, prompt="login")
    return login, submit_email(client, login, email)


def long_code_in(message: EmailMessage) -> str:
    found = LONG_RE.search(text_of(message))
    assert found, "no 16-digit code in the message"
    return found.group(1)


def post_code(client: FlaskClient, login: str, code: str) -> TestResponse:
    token = csrf_token(client.get(login + "/code").get_data(as_text=True))
    return client.post(login + "/code", data={"csrf_token": token, "code": code})


def signed_in_as(client: FlaskClient) -> str | None:
    return client.get("/_test/session").get_json()["account_id"]  # type: ignore[no-any-return]


def sign_in(client: FlaskClient, smtp: SmtpSink, email: str = KNOWN) -> EmailMessage:
    """The person's whole sign-in: ask, read the mail, type its code (16-digit when
    the mail has one, else 6-digit). Asserts it worked; returns the mail."""
    before = len(smtp.messages)
    login, resp = ask(client, email)
    assert path_of(resp) == login + "/code", client.get(login).get_data(as_text=True)
    mail = smtp.last_to(email, after=before)
    text = text_of(mail)
    code = long_code_in(mail) if LONG_RE.search(text) else code_in(mail)
    resp = post_code(client, login, code)
    assert resp.status_code == 303 and not path_of(resp).endswith("/code")
    return mail


def failures(app: Flask, account_id: str) -> int:
    with app.app_context():
        account = db.session.get(Account, account_id)
        assert account is not None and account.locked_at is None
        return account.failed_code_attempts


def wrong_codes(app: Flask, smtp: SmtpSink, client: FlaskClient, count: int) -> None:
    """``count`` wrong codes for KNOWN from ``client``, asking for new codes as needed
    (the stranger sees no mail; the test only avoids hitting the code by chance)."""
    while count > 0:
        before = len(smtp.messages)
        login, resp = ask(client)
        assert path_of(resp) == login + "/code"
        mail = smtp.last_to(KNOWN, after=before)
        found = CODE_RE.search(text_of(mail)) or LONG_RE.search(text_of(mail))
        real = found.group(1).replace(" ", "") if found else "0"
        for _ in range(min(5, count)):
            guess = other_code(real[:6]) if len(real) == 6 else "123456"
            post_code(client, login, guess)
            count -= 1


@pytest.mark.parametrize("extra_settings", [MANY])
def test_stranger_wrong_codes_do_not_lock_the_person_out(
    stand_in: Flask, smtp_server: SmtpSink
) -> None:
    app = stand_in
    account_id = make_account(app)
    own = browser(app, VICTIM_IP)
    sign_in(own, smtp_server)  # the person's browser becomes known for the address
    stranger = browser(app, STRANGER_IP)
    wrong_codes(app, smtp_server, stranger, 105)
    assert failures(app, account_id) >= 100
    # the person's known browser still gets a 6-digit code and signs in ...
    mail = sign_in(own, smtp_server)
    assert CODE_RE.search(text_of(mail)) and not LONG_RE.search(text_of(mail))
    assert signed_in_as(own) == account_id
    assert failures(app, account_id) >= 100  # ... which does not lift the soft lock
    # a new browser of the person, from their own IP, gets a 16-digit code: proving
    # the mailbox with it signs in and resets the count
    new = browser(app, VICTIM_IP)
    mail = sign_in(new, smtp_server)
    assert not CODE_RE.search(text_of(mail))
    assert signed_in_as(new) == account_id
    assert failures(app, account_id) == 0


@pytest.mark.parametrize("extra_settings", [{**MANY, "lockout_failures": 5}])
def test_stranger_cannot_guess_in_after_the_threshold(
    stand_in: Flask, smtp_server: SmtpSink
) -> None:
    app = stand_in
    account_id = make_account(app)
    stranger = browser(app, STRANGER_IP)
    # Suppose the stranger holds the right 6-digit code of one of their sign-ins ...
    before = len(smtp_server.messages)
    held, _resp = ask(stranger)
    right = code_in(smtp_server.last_to(KNOWN, after=before))
    wrong_codes(app, smtp_server, stranger, 5)  # ... and reaches the threshold
    assert failures(app, account_id) == 5
    resp = post_code(stranger, held, right)
    assert path_of(resp) == held + "/code"  # refused: the code is used up
    assert "expired" in stranger.get(held + "/code").get_data(as_text=True)
    assert signed_in_as(stranger) is None
    # new codes for browsers not known for the address are 16 digits (~53 bits):
    # six digits never match again, however many tries
    before = len(smtp_server.messages)
    login, _resp = ask(stranger)
    mail = smtp_server.last_to(KNOWN, after=before)
    assert not CODE_RE.search(text_of(mail))
    code = long_code_in(mail)
    for guess in (code.replace(" ", "")[:6], "000000", code[:4]):
        assert path_of(post_code(stranger, login, guess)) == login + "/code"
    assert signed_in_as(stranger) is None
    assert failures(app, account_id) == 8  # every wrong try counts
    with app.app_context():
        assert code.replace(" ", "") not in all_stored_text(app)  # keyed hash only


def test_stranger_code_requests_do_not_block_the_person(
    stand_in: Flask, smtp_server: SmtpSink
) -> None:
    app = stand_in
    account_id = make_account(app)
    stranger = browser(app, STRANGER_IP)
    answers = [ask(stranger) for _ in range(7)]
    assert [path_of(r) == login + "/code" for login, r in answers] == [True] * 5 + [False] * 2
    assert "Too many codes" in stranger.get(answers[-1][0]).get_data(as_text=True)
    courier(app).drain()
    assert len(smtp_server.wait_for(5)) == 5
    own = browser(app, VICTIM_IP)  # a browser that never signed in, the person's IP
    sign_in(own, smtp_server)
    assert signed_in_as(own) == account_id


@pytest.mark.parametrize("extra_settings", [{"otp_sends_per_address": 2,
                                             "otp_sends_per_address_unknown": 4}])
def test_mail_bombing_is_capped_but_the_known_browser_still_gets_codes(
    stand_in: Flask, smtp_server: SmtpSink
) -> None:
    app = stand_in
    account_id = make_account(app)
    own = browser(app, VICTIM_IP)
    sign_in(own, smtp_server)
    before = len(smtp_server.messages)
    sent = 0
    for n in range(4):  # strangers from four networks, three requests each
        stranger = browser(app, f"203.0.113.{n}")
        for _ in range(3):
            login, resp = ask(stranger)
            sent += path_of(resp) == login + "/code"
    # two per network, until the address's cap for unknown requesters (4, one used
    # by the person's first sign-in, when their browser was not known yet)
    assert sent == 3
    courier(app).drain()
    assert len(smtp_server.messages) - before == 3
    for _ in range(2):  # the per-requester limit still applies to the known browser
        sign_in(own, smtp_server)
    assert signed_in_as(own) == account_id
    login, resp = ask(own)
    assert path_of(resp) == login


def test_per_ip_default_fits_a_company_behind_one_nat_address(
    stand_in: Flask, smtp_server: SmtpSink
) -> None:
    app = stand_in
    office = browser(app, "192.0.2.1")
    login = start(office)
    token = csrf_token(office.get(login).get_data(as_text=True))
    answers = [
        path_of(office.post(login + "/email",
                            data={"csrf_token": token, "email": f"e{n}@corp.example"}))
        for n in range(301)
    ]
    assert answers[:300] == [login + "/code"] * 300  # 300 colleagues in 15 minutes
    assert answers[300] == login  # and still a cap
    assert "Too many codes" in office.get(login).get_data(as_text=True)
    courier(app).drain()
    assert len(smtp_server.wait_for(300)) == 300


@pytest.mark.parametrize("extra_settings", [{"otp_sends_per_ip": 2}])
def test_known_browser_is_not_counted_against_its_ip(
    stand_in: Flask, smtp_server: SmtpSink
) -> None:
    app = stand_in
    account_id = make_account(app)
    own = browser(app, "192.0.2.1")
    sign_in(own, smtp_server)  # one of the IP's two
    colleague = browser(app, "192.0.2.1")
    login, resp = ask(colleague, "bob@corp.example")
    assert path_of(resp) == login + "/code"
    login, resp = ask(colleague, "carl@corp.example")
    assert path_of(resp) == login  # the office IP is used up for unknown browsers ...
    sign_in(own, smtp_server)  # ... not for the browser known for this address
    assert signed_in_as(own) == account_id


def test_known_browser_cookie_is_random_httponly_and_stored_hashed(
    stand_in: Flask, smtp_server: SmtpSink
) -> None:
    app = stand_in
    make_account(app)
    own = browser(app, VICTIM_IP)
    before = len(smtp_server.messages)
    login, _resp = ask(own)
    code = code_in(smtp_server.last_to(KNOWN, after=before))
    resp = post_code(own, login, code)
    cookie = next(h for h in resp.headers.getlist("Set-Cookie") if h.startswith("ug_device="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    token = own.get_cookie("ug_device").value  # type: ignore[union-attr]
    assert len(token) >= 43  # 256 bits, base64url
    assert token not in all_stored_text(app)


@pytest.mark.parametrize("extra_settings", [{**MANY, "lockout_failures": 5}])
def test_admin_unlock_lifts_the_soft_lock(stand_in: Flask, smtp_server: SmtpSink) -> None:
    app = stand_in
    account_id = make_account(app)
    wrong_codes(app, smtp_server, browser(app, STRANGER_IP), 5)
    before = len(smtp_server.messages)
    ask(browser(app, VICTIM_IP))
    assert not CODE_RE.search(text_of(smtp_server.last_to(KNOWN, after=before)))
    with app.app_context():
        assert accounts.unlock(" ANN@corp.example ") is True
    assert failures(app, account_id) == 0
    own = browser(app, VICTIM_IP)
    mail = sign_in(own, smtp_server)
    assert CODE_RE.search(text_of(mail))  # 6 digits again for every browser
    assert signed_in_as(own) == account_id


@pytest.mark.parametrize("extra_settings", [{**MANY, "lockout_failures": 5}])
def test_a_known_browser_that_guesses_is_known_no_more(
    stand_in: Flask, smtp_server: SmtpSink
) -> None:
    """A stolen or shared known browser does not keep 6-digit codes past the soft
    lock: after ``known_devices.MAX_FAILURES`` wrong codes it is treated like any
    unknown requester, and its next mail carries the 16-digit code."""
    from idp.factors import known_devices

    app = stand_in
    make_account(app)
    shared = browser(app, VICTIM_IP)
    sign_in(shared, smtp_server)
    wrong_codes(app, smtp_server, shared, known_devices.MAX_FAILURES)
    before = len(smtp_server.messages)
    _login, _resp = ask(shared)
    mail = smtp_server.last_to(KNOWN, after=before)
    assert LONG_RE.search(text_of(mail)) and not CODE_RE.search(text_of(mail))
    sign_in(shared, smtp_server)  # proving the mailbox makes it known again
    before = len(smtp_server.messages)
    ask(shared)
    assert CODE_RE.search(text_of(smtp_server.last_to(KNOWN, after=before)))
