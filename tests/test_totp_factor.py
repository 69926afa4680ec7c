"""The TOTP factor itself (:mod:`idp.factors.totp`): who must give a code (SSO exempt), the
secret sealed at rest, one use per time step (also for parallel submissions), the
per-account throttle, the admin reset and the unit policy CLI, and the dashboard
section (set up through the login pages, remove unless a unit requires it)."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pyotp
import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select, text

from idp.cli import main
from idp.factors import totp
from idp.mail.outbox import courier
from idp.store import totp_repo
from idp.store.db import db
from idp.store.models import Account, AuditEvent, Session, TotpCredential, Unit
from tests.support.login import csrf_token, post_form
from tests.support.oidc import make_account, make_unit, start_session

EMAIL = "ann@corp.example"


@pytest.fixture
def account_id(app: Flask) -> Iterator[str]:
    yield make_account(app, EMAIL)
    courier(app).drain()


def enrolled_secret(app: Flask, account_id: str) -> str:
    """Set up and confirm TOTP for the account; returns the secret."""
    with app.test_request_context("/"):
        account = db.session.get(Account, account_id)
        assert account is not None
        secret = totp.begin_enrolment(account)
        assert secret is not None
        code = pyotp.TOTP(secret).now()
        assert totp.verify(account_id, "ix-enrol", code, confirm=True).outcome is totp.Outcome.OK
        return secret


def unused_code(app: Flask, account_id: str, secret: str) -> tuple[str, int]:
    with app.app_context():
        last = totp_repo.for_account(account_id).last_used_step  # type: ignore[union-attr]
    generator = pyotp.TOTP(secret)
    now_step = generator.timecode(datetime.now(UTC))
    step = max(now_step, last + 1)
    assert step <= now_step + 1
    return generator.generate_otp(step), step


def test_who_must_give_a_code(app: Flask, account_id: str) -> None:
    with app.app_context():
        assert not totp.due(account_id, ["otp"])  # no unit requires it, not enrolled
    unit_id = make_unit(app, account_id, "Corp GmbH")
    with app.app_context():
        db.session.get(Unit, unit_id).require_totp = True  # type: ignore[union-attr]
        db.session.commit()
        assert totp.due(account_id, ["otp"])
        assert totp.due(account_id, ["pwd"])  # LDAP password sign-ins too
        assert not totp.due(account_id, ["fed"])  # the upstream IdP is responsible
        assert not totp.due(account_id, ["otp", "mfa"])
        assert totp.with_totp(["otp"]) == ["otp", "mfa"]
        assert totp.with_totp(["pwd"]) == ["pwd", "otp", "mfa"]


def test_voluntary_totp_is_asked_for(app: Flask, account_id: str) -> None:
    enrolled_secret(app, account_id)
    with app.app_context():
        assert totp.due(account_id, ["otp"]) and not totp.due(account_id, ["fed"])


def test_secret_is_sealed_not_stored_in_clear(app: Flask, account_id: str) -> None:
    secret = enrolled_secret(app, account_id)
    with app.app_context():
        rows = db.session.execute(text("SELECT * FROM totp_credentials")).all()
        assert len(rows) == 1
        dumped = " ".join(str(v) for v in rows[0])
        assert secret not in dumped and secret.lower() not in dumped
        row = db.session.scalars(select(TotpCredential)).one()
        assert row.secret_sealed.startswith("v1.")
        assert row.confirmed_at is not None


def test_same_time_step_is_accepted_once(app: Flask, account_id: str) -> None:
    secret = enrolled_secret(app, account_id)
    code, step = unused_code(app, account_id, secret)
    with app.test_request_context("/"):
        assert totp.verify(account_id, "ix-1", code).outcome is totp.Outcome.OK
        again = totp.verify(account_id, "ix-2", code)
        assert again.outcome is totp.Outcome.REPLAYED
        assert not totp_repo.claim_step(account_id, step, False, None)
        assert not totp_repo.claim_step(account_id, step - 1, False, None)


def test_parallel_submissions_of_one_code_have_one_winner(app: Flask, account_id: str) -> None:
    secret = enrolled_secret(app, account_id)
    code, _ = unused_code(app, account_id, secret)
    barrier = threading.Barrier(4)
    outcomes: list[totp.Outcome] = []

    def submit(n: int) -> None:
        with app.test_request_context("/"):
            barrier.wait()
            outcomes.append(totp.verify(account_id, f"ix-par-{n}", code).outcome)

    threads = [threading.Thread(target=submit, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(o.value for o in outcomes) == ["ok", "replayed", "replayed", "replayed"]


def test_wrong_codes_are_counted_per_interaction_and_account(app: Flask, account_id: str) -> None:
    secret = enrolled_secret(app, account_id)
    generator = pyotp.TOTP(secret)
    step = generator.timecode(datetime.now(UTC))
    near = {generator.generate_otp(step + d) for d in range(-3, 4)}
    wrong = next(f"{n:06d}" for n in range(100000, 999999, 7) if f"{n:06d}" not in near)
    with app.test_request_context("/"):
        results = [totp.verify(account_id, "ix-w", wrong) for _ in range(5)]
        assert [r.tries_left for r in results] == [4, 3, 2, 1, 0]
        assert results[-1].outcome is totp.Outcome.EXHAUSTED
        code, _ = unused_code(app, account_id, secret)
        assert totp.verify(account_id, "ix-w", code).outcome is totp.Outcome.EXHAUSTED
        for n in range(3):  # 5 + 15 = 20 failures for the account across interactions
            for _ in range(5):
                totp.verify(account_id, f"ix-t{n}", wrong)
        assert totp.verify(account_id, "ix-fresh", code).outcome is totp.Outcome.THROTTLED
        assert totp.verify(account_id, "ix-fresh", "not a code").outcome is totp.Outcome.THROTTLED


def test_malformed_codes_are_wrong_not_errors(app: Flask, account_id: str) -> None:
    enrolled_secret(app, account_id)
    with app.test_request_context("/"):
        fullwidth = "\uff11\uff12\uff13\uff14\uff15\uff16"
        for junk in ("", "12", "abcdef", fullwidth, "1234567", "\x00" * 6):
            assert totp.verify(account_id, f"ix-{junk!r}", junk).outcome is totp.Outcome.WRONG


def test_reset_totp_cli_removes_it_audited(
    app: Flask, runner: FlaskCliRunner, account_id: str
) -> None:
    enrolled_secret(app, account_id)
    result = runner.invoke(main, ["accounts", "reset-totp", " Ann@Corp.example ", "--json"])
    assert result.exit_code == 0, result.output
    assert '"done": true' in result.output
    with app.app_context():
        assert totp_repo.for_account(account_id) is None
        actions = db.session.scalars(
            select(AuditEvent.action).where(AuditEvent.target == account_id)
        ).all()
        assert "account.totp_reset" in actions
    result = runner.invoke(main, ["accounts", "reset-totp", EMAIL])
    assert result.exit_code == 0 and "had no TOTP" in result.output
    result = runner.invoke(main, ["accounts", "reset-totp", "nobody@corp.example"])
    assert result.exit_code != 0 and "no account" in result.output


def test_units_policy_cli(app: Flask, runner: FlaskCliRunner, account_id: str) -> None:
    make_unit(app, account_id, "Corp GmbH")
    result = runner.invoke(main, ["units", "policy", "corp-gmbh", "--json"])
    assert result.exit_code == 0 and '"require_totp": false' in result.output
    result = runner.invoke(main, ["units", "policy", "corp-gmbh", "--require-totp"])
    assert result.exit_code == 0 and "require_totp=yes" in result.output
    with app.app_context():
        assert totp.due(account_id, ["otp"])
        policy = select(AuditEvent).where(AuditEvent.action == "unit.policy")
        assert db.session.scalars(policy).one()
    result = runner.invoke(main, ["units", "policy", "corp-gmbh", "--no-require-totp", "--json"])
    assert '"require_totp": false' in result.output
    result = runner.invoke(main, ["units", "policy", "no-such-unit", "--json"])
    assert result.exit_code == 1 and '"error": "not_found"' in result.output


def test_dashboard_sets_up_and_removes_totp(
    app: Flask, client: FlaskClient, account_id: str
) -> None:
    start_session(app, client, account_id)
    html = client.get("/account").get_data(as_text=True)
    assert 'id="two-step"' in html and "Off:" in html
    assert client.post("/account/two-step/setup").status_code == 400  # no CSRF token
    resp = client.post("/account/two-step/setup", data={"csrf_token": csrf_token(html)})
    assert resp.status_code == 303
    setup_page = resp.headers["Location"]
    assert setup_page.endswith("/totp/setup")
    page = client.get(setup_page).get_data(as_text=True)
    secret = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', page).group(1).replace(" ", "")  # type: ignore[union-attr]
    resp = post_form(client, setup_page, setup_page, {"code": pyotp.TOTP(secret).now()})
    while resp.status_code == 303 and "/account" not in resp.headers["Location"].split("?")[0][-9:]:
        resp = client.get(resp.headers["Location"])
    assert resp.headers["Location"].endswith("/account")
    html = client.get("/account").get_data(as_text=True)
    assert "On:" in html
    with app.app_context():
        amrs = db.session.scalars(select(Session.amr).where(Session.account_id == account_id)).all()
        assert amrs == [["otp", "mfa"]]
    resp = client.post("/account/two-step/remove", data={"csrf_token": csrf_token(html)})
    assert resp.status_code == 303
    assert "Off:" in client.get("/account").get_data(as_text=True)


def test_dashboard_cannot_remove_totp_a_unit_requires(
    app: Flask, client: FlaskClient, runner: FlaskCliRunner, account_id: str
) -> None:
    make_unit(app, account_id, "Corp GmbH")
    runner.invoke(main, ["units", "policy", "corp-gmbh", "--require-totp"])
    enrolled_secret(app, account_id)
    start_session(app, client, account_id, amr=["otp", "mfa"])  # signed in with TOTP
    html = client.get("/account").get_data(as_text=True)
    assert "Required by Corp GmbH." in html and "two-step/remove" not in html
    resp = client.post("/account/two-step/remove", data={"csrf_token": csrf_token(html)})
    assert resp.status_code == 303
    with app.app_context():
        assert totp.enrolled(account_id)
