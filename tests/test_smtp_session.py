"""The courier's reusable SMTP connection (``idp.mail.smtp.SmtpSession``) against a
real aiosmtpd server: several messages share one connection, a connection the server
dropped is replaced without losing the message, and an unreachable server is a
delivery error (the outbox retries)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from idp.mail import smtp
from idp.mail.render import build_message
from tests.support.processes import free_port


class _Peers:
    """Records, for each accepted message, the client address of its connection."""

    def __init__(self) -> None:
        self.peers: list[tuple[str, int]] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.peers.append(tuple(session.peer))
        return "250 OK"


def _message(n: int) -> Any:
    return build_message(
        "Unitgate <no-reply@unitgate.localhost>", "a@example.com", f"m{n}", "text", "<p>h</p>"
    )


class _Server:
    """An aiosmtpd server on a fixed port that can be stopped and started again."""

    def __init__(self) -> None:
        self.handler = _Peers()
        self.port = free_port()
        self.controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture()
def server() -> Any:
    running = _Server()
    running.start()
    yield running, running.handler
    running.stop()


def test_messages_share_one_connection(server: Any) -> None:
    controller, handler = server
    session = smtp.SmtpSession(smtp.parse_smtp_url(f"smtp://127.0.0.1:{controller.port}"))
    try:
        for n in range(3):
            session.send(_message(n))
    finally:
        session.close()
    assert len(handler.peers) == 3
    assert len(set(handler.peers)) == 1


def test_dropped_connection_is_replaced_and_message_sent(server: Any) -> None:
    controller, handler = server
    session = smtp.SmtpSession(smtp.parse_smtp_url(f"smtp://127.0.0.1:{controller.port}"))
    try:
        session.send(_message(1))
        controller.stop()  # closes the connection under the session
        controller.start()  # same port
        session.send(_message(2))
    finally:
        session.close()
    assert len(handler.peers) == 2
    assert handler.peers[0] != handler.peers[1]


def test_unreachable_server_is_a_delivery_error(server: Any) -> None:
    controller, handler = server
    session = smtp.SmtpSession(
        smtp.parse_smtp_url(f"smtp://127.0.0.1:{controller.port}?timeout=2")
    )
    session.send(_message(1))
    controller.stop()
    try:
        with pytest.raises(smtp.SmtpDeliveryError):
            session.send(_message(2))
    finally:
        session.close()
    assert len(handler.peers) == 1


def test_idle_connection_is_reopened(server: Any) -> None:
    controller, handler = server
    session = smtp.SmtpSession(
        smtp.parse_smtp_url(f"smtp://127.0.0.1:{controller.port}"), idle_seconds=0.0
    )
    try:
        session.send(_message(1))
        session.send(_message(2))
    finally:
        session.close()
    assert len(handler.peers) == 2
    assert handler.peers[0] != handler.peers[1]
