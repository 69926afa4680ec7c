"""German and English: the browser's language by default, ``?lang=`` links on every
page (remembered in ``ug_lang``), and a German catalogue that covers every string of
the login pages and mails."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from flask import Flask, render_template_string
from flask.testing import FlaskClient

from idp.mail.outbox import courier
from idp.mail.render import render_email
from idp.store.models import utcnow
from tests.support.login import add_protocol_stand_in, start, submit_email

ROOT = Path(__file__).resolve().parents[1]
CATALOGUE = ROOT / "idp" / "translations" / "de" / "LC_MESSAGES"
GERMAN = {"Accept-Language": "de-DE,de;q=0.9,en;q=0.5"}


@pytest.fixture
def web(app: Flask, client: FlaskClient) -> Iterator[FlaskClient]:
    add_protocol_stand_in(app)
    yield client
    courier(app).drain()


def test_browser_language_decides_by_default(web: FlaskClient) -> None:
    login = start(web)
    html = web.get(login, headers=GERMAN).get_data(as_text=True)
    assert '<html lang="de">' in html
    assert "Berufliche E-Mail-Adresse" in html and "Code senden" in html
    assert "Work e-mail address" not in html
    english = web.get(login, headers={"Accept-Language": "en-GB"}).get_data(as_text=True)
    assert '<html lang="en">' in english and "Work e-mail address" in english
    other = web.get(login, headers={"Accept-Language": "fr"}).get_data(as_text=True)
    assert '<html lang="en">' in other


def test_lang_link_switches_and_is_remembered(web: FlaskClient) -> None:
    login = start(web)
    resp = web.get(login + "?lang=en", headers=GERMAN)
    assert "Work e-mail address" in resp.get_data(as_text=True)
    cookie = next(h for h in resp.headers.getlist("Set-Cookie") if h.startswith("ug_lang="))
    assert cookie.startswith("ug_lang=en;") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    # later pages keep English although the browser prefers German
    assert "Work e-mail address" in web.get(login, headers=GERMAN).get_data(as_text=True)
    resp = web.get(login + "?lang=de")
    assert "Berufliche E-Mail-Adresse" in resp.get_data(as_text=True)
    assert web.get_cookie("ug_lang").value == "de"  # type: ignore[union-attr]
    # an unsupported choice changes nothing
    resp = web.get(login + "?lang=xx")
    assert not [h for h in resp.headers.getlist("Set-Cookie") if h.startswith("ug_lang=")]
    assert "Berufliche E-Mail-Adresse" in resp.get_data(as_text=True)


@pytest.mark.parametrize("path", ["LOGIN", "LOGIN/code", "/interaction/gone", "/nowhere"])
def test_every_page_links_both_languages(web: FlaskClient, path: str) -> None:
    login = start(web)
    submit_email(web, login, "ann@corp.example")
    url = path.replace("LOGIN", login)
    html = web.get(url + "?x=1").get_data(as_text=True)
    assert f'href="{url}?x=1&amp;lang=de" hreflang="de"' in html
    assert f'href="{url}?x=1&amp;lang=en" hreflang="en"' in html
    assert 'lang="en" aria-current="true">English' in html


def test_german_code_page_and_errors(web: FlaskClient) -> None:
    login = start(web)
    web.get(login + "?lang=de")
    submit_email(web, login, "kaputt")
    html = web.get(login).get_data(as_text=True)
    assert "Geben Sie eine gültige E-Mail-Adresse ein" in html
    submit_email(web, login, "ann@corp.example")
    html = web.get(login + "/code").get_data(as_text=True)
    text = re.sub(r"<[^>]+>", "", html)
    assert "Wir haben einen 6-stelligen Code an ann@corp.example gesendet" in text
    assert "Er ist 10 Minuten gültig." in text
    assert '<span class="ug-address">ann@corp.example</span>' in html
    assert "Neuen Code senden" in html and "Check your e-mail" not in html


def _catalogue() -> dict[str, object]:
    with (CATALOGUE / "messages.po").open("rb") as f:
        return {m.id if isinstance(m.id, str) else m.id[0]: m.string
                for m in read_po(f) if m.id}


OWN_SOURCES = [("idp/login/**.py", "python"), ("idp/mail/**.py", "python"),
               ("idp/factors/email_otp.py", "python"), ("templates/login/**.html", "jinja2"),
               ("templates/mail/**.html", "jinja2"), ("templates/mail/**.txt", "jinja2"),
               ("templates/base.html", "jinja2"), ("templates/error.html", "jinja2"),
               ("idp/dashboard/**.py", "python"), ("templates/account/**.html", "jinja2"),
               ("idp/errors.py", "python"), ("templates/landing.html", "jinja2")]


def test_catalogue_covers_every_login_and_mail_string() -> None:
    catalogue = _catalogue()
    found = [
        message if isinstance(message, str) else message[0]
        for _file, _line, message, *_rest in extract_from_dir(
            str(ROOT), method_map=OWN_SOURCES,
            keywords={"_": None, "gettext": None, "ngettext": (1, 2), "_l": None,
                      "lazy_gettext": None},
        )
    ]
    assert len(found) > 60
    missing = sorted({m for m in found if not catalogue.get(m)})
    assert missing == [], f"untranslated: {missing}"


def test_compiled_catalogue_is_up_to_date() -> None:
    with (CATALOGUE / "messages.mo").open("rb") as f:
        compiled = {m.id if isinstance(m.id, str) else m.id[0]: _flat(m.string)
                    for m in read_mo(io.BytesIO(f.read())) if m.id}
    assert compiled == {k: _flat(v) for k, v in _catalogue().items() if v}


def _flat(value: object) -> object:
    return tuple(value) if isinstance(value, list | tuple) else value


@pytest.mark.parametrize(
    ("page_headers", "page_text", "mail_lang", "mail_text"),
    [
        ({"Accept-Language": "en"}, "Send code", "de", "Minuten gültig"),
        (GERMAN, "Code senden", "en", "valid for"),
    ],
)
def test_a_mail_in_another_language_leaves_the_page_language_alone(
    app: Flask, page_headers: dict[str, str], page_text: str, mail_lang: str, mail_text: str
) -> None:
    """Templates translate through a per-language catalogue cache: a mail rendered
    in the recipient's language (``force_locale``) gets that language, and the
    page's strings before and after it keep the request's."""
    page = "{{ _('Send code') }}"
    with app.test_request_context("/", headers=page_headers):
        assert render_template_string(page) == page_text
        mail = render_email(
            "code", mail_lang, code="123456", minutes=10, client_name="Shop",
            expires_at=utcnow(),
        )
        assert mail_text in mail.text
        assert render_template_string(page) == page_text
