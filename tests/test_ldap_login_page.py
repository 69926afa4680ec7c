"""The company-password login page, through the real login interaction and slapd."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from idp.ldap import sync as ldap_sync
from idp.store import ldap_repo
from idp.store.db import db
from idp.store.models import LdapDirectory, Session
from tests.support import slapd as ldap_test
from tests.support.login import add_protocol_stand_in, path_of, post_form, start

EMAIL = "user00002@acme.example"
PASSWORD = ldap_test.password_of(2)


@pytest.fixture
def web(app: Flask, client: FlaskClient) -> Iterator[FlaskClient]:
    add_protocol_stand_in(app)
    yield client


def enable_login(app: Flask, directory_id: str, login: bool = True) -> None:
    with app.app_context():
        row = db.session.get(LdapDirectory, directory_id)
        assert row is not None
        row.login_enabled = login
        db.session.commit()
        ldap_sync.run_locked(row)


def submit_password(web: FlaskClient, login: str, email: str, password: str):  # type: ignore[no-untyped-def]
    return post_form(web, login + "/password", login + "/password",
                     {"email": email, "password": password})


def test_email_page_links_to_the_password_page_only_when_offered(
    app: Flask, web: FlaskClient, directory_id: str
) -> None:
    enable_login(app, directory_id, login=False)
    login = start(web)
    assert "/password" not in web.get(login).get_data(as_text=True)
    enable_login(app, directory_id, login=True)
    assert f"{login}/password" in web.get(login).get_data(as_text=True)


def test_directory_password_signs_in_with_amr_pwd(
    app: Flask, web: FlaskClient, directory_id: str
) -> None:
    enable_login(app, directory_id)
    login = start(web)
    page = web.get(login + "/password")
    assert page.status_code == 200
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    resp = submit_password(web, login, EMAIL, PASSWORD)
    assert resp.status_code == 303
    assert not path_of(resp).endswith("/password")
    with app.app_context():
        rows = db.session.scalars(select(Session)).all()
        assert len(rows) == 1 and rows[0].amr == ["pwd"]


@pytest.mark.parametrize(
    ("email", "password"),
    [
        (EMAIL, "wrong"),
        (EMAIL, ""),
        ("nobody@acme.example", "whatever"),
        ("user00100@acme.example", ldap_test.password_of(100)),  # disabled in AD
    ],
)
def test_every_failure_looks_the_same(
    app: Flask, web: FlaskClient, directory_id: str, email: str, password: str
) -> None:
    enable_login(app, directory_id)
    login = start(web)
    resp = submit_password(web, login, email, password)
    assert resp.status_code == 303 and path_of(resp) == login + "/password"
    html = web.get(login + "/password").get_data(as_text=True)
    assert "The e-mail address or the password is not right." in html
    with app.app_context():
        assert db.session.scalars(select(Session)).all() == []


def test_without_csrf_token_nothing_happens(
    app: Flask, web: FlaskClient, directory_id: str
) -> None:
    enable_login(app, directory_id)
    login = start(web)
    resp = web.post(login + "/password", data={"email": EMAIL, "password": PASSWORD})
    assert resp.status_code == 400
    with app.app_context():
        assert db.session.scalars(select(Session)).all() == []


def test_directory_down_fails_closed_with_503(
    app: Flask, web: FlaskClient, directory_id: str
) -> None:
    enable_login(app, directory_id)
    with app.app_context():
        row = ldap_repo.directory(directory_id)
        assert row is not None
        row.url = f"ldap://127.0.0.1:{ldap_test.free_port()}"
        db.session.commit()
    login = start(web)
    resp = submit_password(web, login, EMAIL, PASSWORD)
    assert resp.status_code == 503
    body = resp.get_data(as_text=True)
    assert "cannot be reached" in body and "Traceback" not in body
    with app.app_context():
        assert db.session.scalars(select(Session)).all() == []
