"""Rendering e-mails: subject, plain-text and HTML bodies from ``templates/mail/``
in the recipient's language, and the MIME message sent over SMTP.

Every mail is ``multipart/alternative`` (RFC 2046 §5.1.4): the text part first, the
HTML part second, so clients show the richest part they support. It carries
``Auto-Submitted: auto-generated`` (RFC 3834 §5) so auto-responders stay quiet.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from typing import Any

from flask import render_template
from flask_babel import force_locale, gettext

from idp.i18n import SUPPORTED

SUBJECTS: dict[str, Callable[[], str]] = {
    "code": lambda: gettext("Your Unitgate sign-in code"),
    "locked": lambda: gettext("Unitgate sign-in not possible"),
}


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def render_email(template: str, lang: str, **context: Any) -> RenderedEmail:
    """Render ``mail/<template>.txt`` and ``.html`` with its subject in ``lang``
    (``en`` when the language is not supported)."""
    if template not in SUBJECTS:
        raise KeyError(f"unknown mail template {template!r}")
    lang = lang if lang in SUPPORTED else "en"
    with force_locale(lang):
        return RenderedEmail(
            subject=SUBJECTS[template](),
            text=render_template(f"mail/{template}.txt", lang=lang, **context),
            html=render_template(f"mail/{template}.html", lang=lang, **context),
        )


def build_message(
    sender: str, to: str, subject: str, text: str, html: str, created_at: Any = None
) -> EmailMessage:
    """The MIME message: ``multipart/alternative`` with text and HTML parts, a
    ``Message-ID`` in the sender's domain and the creation time as ``Date``."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    if created_at is not None:
        message["Date"] = format_datetime(created_at)
    domain = parseaddr(sender)[1].rpartition("@")[2] or None
    message["Message-ID"] = make_msgid(domain=domain)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message
