"""A local SMTP server (aiosmtpd) that keeps the latest one-time code per recipient,
so the sign-in driver can read codes the way a person reads their mail."""

from __future__ import annotations

import email
import re
from email.message import Message
from typing import Any

from aiosmtpd.controller import Controller

CODE = re.compile(r"(?<!\d)(\d{6})(?!\d)")


def code_in(message: Message) -> str | None:
    """The first six-digit number of the text part (else any part) of ``message``."""
    parts = [p for p in message.walk() if not p.is_multipart()]
    parts.sort(key=lambda p: p.get_content_type() != "text/plain")
    for part in parts:
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        found = CODE.search(payload.decode(part.get_content_charset() or "utf-8", "replace"))
        if found:
            return found.group(1)
    subject = CODE.search(str(message.get("Subject", "")))
    return subject.group(1) if subject else None


class _Handler:
    def __init__(self, codes: Any) -> None:
        self.codes = codes
        self.received = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content)
        code = code_in(message)
        self.received += 1
        if code:
            for rcpt in envelope.rcpt_tos:
                self.codes[rcpt.lower()] = code
        return "250 OK"


class SmtpSink:
    """Start with :meth:`start`; ``codes`` maps recipient -> latest code and may be a
    ``multiprocessing.Manager().dict()`` shared with driver processes."""

    def __init__(self, codes: Any, port: int) -> None:
        self.handler = _Handler(codes)
        self.port = port
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=port)

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()
