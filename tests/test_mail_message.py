"""The MIME writer of :func:`idp.mail.render.build_message`, read back by the standard
library's parser: structure, headers, non-ASCII text in headers and bodies, long
lines, text that looks like MIME syntax, and refused header injection."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime
from email.message import EmailMessage

import pytest

from idp.mail.render import build_message

SENDER = "Unitgate <no-reply@unitgate.localhost>"


def parse(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def body(message: EmailMessage, kind: str) -> str:
    part = message.get_body(preferencelist=(kind,))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")  # canonical CRLF line ends


def test_multipart_alternative_text_then_html() -> None:
    created = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    mail = build_message(SENDER, "ann@corp.example", "Your code", "Code: 123456\n",
                         "<p>Code: <b>123456</b></p>\n", created)
    assert mail.mail_from == "no-reply@unitgate.localhost"
    assert mail.rcpt_to == ("ann@corp.example",)
    assert mail.data.isascii() and b"\r\n" in mail.data
    assert all(len(line) <= 78 for line in mail.data.split(b"\r\n"))
    message = parse(mail.data)
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    assert message["From"] == SENDER and message["To"] == "ann@corp.example"
    assert message["Subject"] == "Your code"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Date"].datetime == created
    assert message["Message-ID"].endswith("@unitgate.localhost>")
    assert body(message, "plain") == "Code: 123456\n"
    assert body(message, "html") == "<p>Code: <b>123456</b></p>\n"
    assert not message.defects and all(not p.defects for p in message.walk())
    other = build_message(SENDER, "ann@corp.example", "Your code", "t", "h", created)
    assert parse(other.data)["Message-ID"] != message["Message-ID"]


def test_non_ascii_headers_and_bodies_round_trip() -> None:
    subject = "Anmeldung bei Unitgate nicht möglich"
    text = "Grüße an Müller & Söhne GmbH — gültig 10 Minuten.\n\n-- \nUnitgate\n"
    html = '<p lang="de">Grüße, Straße ☃</p>'
    mail = build_message("Unitgate Süd <no-reply@sued.example.org>", "bob@corp.example",
                         subject, text, html)
    assert mail.data.isascii()
    message = parse(mail.data)
    assert message["Subject"] == subject
    assert message["From"].addresses[0].display_name == "Unitgate Süd"
    assert body(message, "plain") == text
    assert body(message, "html") == html
    assert "Date" not in message


def test_long_lines_and_mime_lookalikes_survive() -> None:
    boundary_like = "--=_0123456789abcdef\n--=_0123456789abcdef--\n"
    text = "x" * 500 + "\n" + boundary_like + "trailing space   \n=3D literal\r\nend"
    long_subject = "A subject that is rather long " * 4
    mail = build_message(SENDER, "ann@corp.example", long_subject.strip(), text, text)
    assert all(len(line) <= 78 for line in mail.data.split(b"\r\n"))
    message = parse(mail.data)
    assert message["Subject"] == long_subject.strip()
    expected = text.replace("\r\n", "\n")
    assert body(message, "plain") == expected and body(message, "html") == expected


@pytest.mark.parametrize("field", ["sender", "to", "subject"])
def test_line_breaks_in_headers_are_refused(field: str) -> None:
    values = {"sender": SENDER, "to": "ann@corp.example", "subject": "Hi"}
    values[field] += "\r\nBcc: victim@corp.example"
    with pytest.raises(ValueError):
        build_message(values["sender"], values["to"], values["subject"], "t", "h")


@pytest.mark.parametrize("to", ["", "no-at-sign", "a b@corp.example", "Ann <a@corp.example>",
                                "a@corp.example,b@corp.example", "ü@corp.example"])
def test_unusable_recipients_are_refused(to: str) -> None:
    with pytest.raises(ValueError):
        build_message(SENDER, to, "Hi", "t", "h")
