"""A real SMTP server for tests: aiosmtpd on a free loopback port, collecting every
message it accepts.

``smtp_server`` is a running :class:`SmtpSink`; a test module points the app at it
with ``settings_overrides`` (``{"smtp_url": smtp_server.url}``). The sink can be
stopped and started again on the same port (outage tests), and can speak STARTTLS or
implicit TLS with a throw-away CA, optionally requiring a login.
"""

from __future__ import annotations

import email
import email.policy
import re
import ssl
import threading
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.support.processes import free_port

CODE_RE = re.compile(r"\b(\d{6})\b")


class _Collector:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self.sink.cond:
            self.sink.messages.append(message)
            self.sink.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
            self.sink.cond.notify_all()
        return "250 OK"


class SmtpSink:
    """An aiosmtpd server that keeps what it receives."""

    def __init__(
        self,
        tls: str | None = None,
        login: tuple[str, str] | None = None,
        tls_files: tuple[Path, Path, Path] | None = None,
    ) -> None:
        self.port = free_port()
        self.tls = tls  # None, "starttls" or "smtps"
        self.login = login
        self.tls_files = tls_files  # (ca, cert, key)
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.cond = threading.Condition()
        self.controller: Controller | None = None

    @property
    def url(self) -> str:
        scheme = {"starttls": "smtp+starttls", "smtps": "smtps"}.get(self.tls or "", "smtp")
        auth = f"{quote(self.login[0], safe='')}:{quote(self.login[1], safe='')}@" \
            if self.login else ""
        query = f"?cafile={self.tls_files[0]}&timeout=5" if self.tls_files else "?timeout=5"
        return f"{scheme}://{auth}127.0.0.1:{self.port}{query}"

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str,
                      data: Any) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and self.login is not None
            and (data.login.decode(), data.password.decode()) == self.login
        )
        return AuthResult(success=ok)

    def start(self) -> None:
        kwargs: dict[str, Any] = {}
        if self.tls:
            assert self.tls_files is not None
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(str(self.tls_files[1]), str(self.tls_files[2]))
            if self.tls == "starttls":
                kwargs.update(tls_context=context, require_starttls=True)
            else:
                kwargs.update(ssl_context=context)
        if self.login:
            # aiosmtpd only counts STARTTLS as TLS; implicit TLS is encrypted from the
            # first byte, so AUTH may be offered there without it.
            kwargs.update(authenticator=self._authenticate, auth_required=True,
                          auth_require_tls=self.tls != "smtps")
        self.controller = Controller(
            _Collector(self), hostname="127.0.0.1", port=self.port, **kwargs
        )
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def wait_for(self, count: int = 1, timeout: float = 20.0) -> list[EmailMessage]:
        """Block until at least ``count`` messages arrived; the messages so far."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.messages) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"expected {count} message(s), got {len(self.messages)}"
                    )
                self.cond.wait(left)
            return list(self.messages)

    def last_to(self, address: str, after: int = 0, timeout: float = 20.0) -> EmailMessage:
        """The newest message to ``address`` among those after the first ``after``,
        waiting for it to arrive."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                found = [m for m in self.messages[after:] if m["To"] == address]
                if found:
                    return found[-1]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no message to {address}")
                self.cond.wait(left)


def text_of(message: EmailMessage) -> str:
    """The plain-text body of ``message``."""
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def html_of(message: EmailMessage) -> str:
    """The HTML body of ``message``."""
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())


def code_in(message: EmailMessage) -> str:
    """The 6-digit code in the text body of ``message``."""
    found = CODE_RE.search(text_of(message))
    assert found, "no 6-digit code in the message"
    return found.group(1)


@pytest.fixture
def smtp_server() -> Iterator[SmtpSink]:
    """A running plain SMTP server on a free loopback port."""
    sink = SmtpSink()
    sink.start()
    yield sink
    sink.stop()
