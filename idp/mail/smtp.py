"""SMTP delivery (RFC 5321) configured by one URL, ``IDP_SMTP_URL``:

* ``smtp://host:port`` plain SMTP (port 25 by default), for a local relay;
* ``smtp+starttls://user:pass@host:587`` upgraded with STARTTLS (RFC 3207);
* ``smtps://user:pass@host:465`` TLS from the first byte (RFC 8314).

User and password are percent-decoded. TLS verifies the server certificate against
the system trust store, or against the PEM file named by the query parameter
``cafile`` (``smtps://mail.internal:465?cafile=/etc/unitgate/mail-ca.pem``).
``timeout`` (seconds, default 10) bounds connecting and every command.
"""

from __future__ import annotations

import smtplib
import ssl
import time
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from idp.mail.render import OutgoingMail

SCHEMES = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}


class SmtpConfigError(ValueError):
    """``IDP_SMTP_URL`` cannot be understood."""


class SmtpDeliveryError(RuntimeError):
    """The message could not be handed to the SMTP server (retry later)."""


@dataclass(frozen=True)
class SmtpTarget:
    scheme: str
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    cafile: str | None = None
    timeout: float = 10.0

    @property
    def uses_tls(self) -> bool:
        return self.scheme in ("smtps", "smtp+starttls")

    def __repr__(self) -> str:  # never print the password
        return f"SmtpTarget({self.scheme}://{self.host}:{self.port})"


def parse_smtp_url(url: str) -> SmtpTarget:
    """The delivery target of ``url``; raises :class:`SmtpConfigError` when the scheme,
    host, port or options are not usable."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise SmtpConfigError("IDP_SMTP_URL is not a valid URL") from exc
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise SmtpConfigError(f"IDP_SMTP_URL scheme must be one of {', '.join(SCHEMES)}")
    if not parts.hostname:
        raise SmtpConfigError("IDP_SMTP_URL has no host")
    query = parse_qs(parts.query)
    timeout = 10.0
    if "timeout" in query:
        try:
            timeout = float(query["timeout"][0])
        except ValueError as exc:
            raise SmtpConfigError("IDP_SMTP_URL timeout must be a number") from exc
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    if username and scheme == "smtp":
        raise SmtpConfigError("refusing to send a password without TLS: use smtps or "
                              "smtp+starttls")
    return SmtpTarget(
        scheme=scheme,
        host=parts.hostname,
        port=port or SCHEMES[scheme],
        username=username,
        password=password,
        cafile=query.get("cafile", [None])[0],
        timeout=timeout,
    )


def _tls_context(target: SmtpTarget) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=target.cafile)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _open(target: SmtpTarget) -> smtplib.SMTP:
    """A connected, greeted (and, as configured, TLS-upgraded and logged-in) client."""
    client: smtplib.SMTP
    if target.scheme == "smtps":
        client = smtplib.SMTP_SSL(
            target.host, target.port, timeout=target.timeout, context=_tls_context(target)
        )
    else:
        client = smtplib.SMTP(target.host, target.port, timeout=target.timeout)
    try:
        client.ehlo()
        if target.scheme == "smtp+starttls":
            client.starttls(context=_tls_context(target))
            client.ehlo()
        if target.username:
            client.login(target.username, target.password or "")
    except BaseException:
        client.close()
        raise
    return client


def _hand_over(client: smtplib.SMTP, message: OutgoingMail) -> None:
    refused = client.sendmail(message.mail_from, list(message.rcpt_to), message.data)
    if refused:
        raise SmtpDeliveryError(f"recipients refused: {sorted(refused)}")


def send(target: SmtpTarget, message: OutgoingMail) -> None:
    """Hand ``message`` to the server over a connection of its own. Raises
    :class:`SmtpDeliveryError` on any connection, TLS, authentication or refusal
    error, with a short reason."""
    try:
        with _open(target) as client:
            _hand_over(client, message)
    except SmtpDeliveryError:
        raise
    except (smtplib.SMTPException, OSError, ssl.SSLError) as exc:
        raise SmtpDeliveryError(f"{type(exc).__name__}: {exc}"[:500]) from exc


class SmtpSession:
    """One SMTP connection reused for a series of messages (RFC 5321 section 3.3:
    several mail transactions per session), for one thread at a time.

    A connection unused for ``idle_seconds`` is closed and opened anew before the
    next message. When the server dropped a reused connection (it answers the first
    command of the transaction with a disconnect), the message is sent once more
    over a fresh connection; any other failure closes the connection and raises
    :class:`SmtpDeliveryError` like :func:`send`."""

    def __init__(self, target: SmtpTarget, idle_seconds: float = 20.0) -> None:
        self.target = target
        self._idle_seconds = idle_seconds
        self._client: smtplib.SMTP | None = None
        self._used = 0.0

    def send(self, message: OutgoingMail) -> None:
        """Hand ``message`` to the server (see the class docstring)."""
        if self._client is not None and time.monotonic() - self._used > self._idle_seconds:
            self.close()
        try:
            if self._client is None:
                self._client = _open(self.target)
            else:
                try:
                    _hand_over(self._client, message)
                    self._used = time.monotonic()
                    return
                except (smtplib.SMTPServerDisconnected, ConnectionError):
                    self.close()
                    self._client = _open(self.target)
            _hand_over(self._client, message)
            self._used = time.monotonic()
        except SmtpDeliveryError:
            self.close()
            raise
        except (smtplib.SMTPException, OSError, ssl.SSLError) as exc:
            self.close()
            raise SmtpDeliveryError(f"{type(exc).__name__}: {exc}"[:500]) from exc

    def close(self) -> None:
        """Say QUIT (best effort) and drop the connection."""
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.quit()
        except (smtplib.SMTPException, OSError, ssl.SSLError):
            client.close()
