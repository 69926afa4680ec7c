"""LDAP / Active Directory connector (ldap3): connect, paged search, password bind.

This module speaks LDAP only; it knows nothing about accounts or units. The sync
service (``idp.ldap.sync``) and the LDAP password login (``idp.login.ldap_bind``) build
on it.

Transport rules (RFC 4513 section 3 and 5):

* ``ldaps://`` (TLS from the first byte) or ``ldap://`` with StartTLS
  (RFC 4511 section 4.14) before any bind; certificates are always verified
  against the system CAs or the directory's own CA, and the host name is checked;
* plain ``ldap://`` without StartTLS sends passwords in the clear and is refused
  unless the server is on a loopback address;
* an empty password is never sent: RFC 4513 section 5.1.2 makes a simple bind with
  a DN and no password an *unauthenticated* bind that many servers accept.

Every failure is raised as :class:`LdapError` with a message meant for an operator,
never a traceback.
"""

from __future__ import annotations

import contextlib
import ipaddress
import ssl
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import ldap3
from ldap3.core import exceptions as ldap_exc
from ldap3.utils.conv import escape_filter_chars

DEFAULT_TIMEOUT = 10
USER_ACCOUNT_CONTROL = "userAccountControl"
ACCOUNTDISABLE = 0x2  # [MS-ADTS] 2.2.16 userAccountControl flag
AUTO_ID = "auto"
# Stable entry ids tried in order when the id attribute is "auto": AD, OpenLDAP
# (RFC 4530), 389-DS / Oracle.
AUTO_ID_ATTRIBUTES = ("objectGUID", "entryUUID", "nsUniqueId")
MAX_PASSWORD_LENGTH = 1024


class LdapError(Exception):
    """A connection, TLS, bind or search failure, with an operator-readable message.

    ``kind`` says which, for a caller that words it for its own readers:
    ``unreachable``, ``tls``, ``credentials`` (the bind was refused), ``search``, or
    ``error`` (anything else)."""

    def __init__(self, message: str, kind: str = "error") -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class ServerAddress:
    host: str
    port: int
    use_ssl: bool


@dataclass(frozen=True)
class LdapConfig:
    """Where and how to connect; ``ca_pem`` replaces the system CAs when set."""

    url: str
    bind_dn: str
    bind_password: str
    start_tls: bool = False
    ca_pem: str | None = None
    timeout: int = DEFAULT_TIMEOUT


@dataclass
class LdapEntry:
    """One search result: its DN and attributes as lists of str (or bytes)."""

    dn: str
    attributes: dict[str, list[Any]] = field(default_factory=dict)

    def first(self, name: str) -> Any | None:
        """The first value of attribute ``name`` (case-insensitive), or None."""
        values = self.values(name)
        return values[0] if values else None

    def __post_init__(self) -> None:
        self._by_lower = {key.lower(): value for key, value in self.attributes.items()}

    def values(self, name: str) -> list[Any]:
        """All values of attribute ``name`` (case-insensitive); [] when absent."""
        values = self._by_lower.get(name.lower())
        if values is None:
            return []
        return list(values) if isinstance(values, list | tuple) else [values]


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_url(url: str, start_tls: bool = False) -> ServerAddress:
    """Validate an ``ldap://`` / ``ldaps://`` URL (RFC 4516 host and port only).

    Raises :class:`LdapError` for other schemes, paths or credentials in the URL,
    StartTLS on ``ldaps``, and plain-text LDAP to a non-loopback host.
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise LdapError(f"invalid LDAP URL {url!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("ldap", "ldaps"):
        raise LdapError(f"invalid LDAP URL {url!r}: scheme must be ldap:// or ldaps://")
    if not parts.hostname:
        raise LdapError(f"invalid LDAP URL {url!r}: no host")
    if parts.username or parts.password or parts.path not in ("", "/") or parts.query:
        raise LdapError(
            f"invalid LDAP URL {url!r}: give only scheme, host and port "
            "(bind DN, base DN and filter are separate settings)"
        )
    use_ssl = scheme == "ldaps"
    if use_ssl and start_tls:
        raise LdapError("StartTLS is for ldap:// URLs; ldaps:// is already encrypted")
    if not use_ssl and not start_tls and not _is_loopback(parts.hostname):
        raise LdapError(
            f"refusing plain-text LDAP to {parts.hostname}: use ldaps:// or StartTLS "
            "(passwords would cross the network unencrypted)"
        )
    return ServerAddress(parts.hostname, port or (636 if use_ssl else 389), use_ssl)


def _tls(cfg: LdapConfig, host: str) -> ldap3.Tls:
    if cfg.ca_pem:
        return ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_data=cfg.ca_pem, sni=host)
    return ldap3.Tls(validate=ssl.CERT_REQUIRED, sni=host)


def _server(cfg: LdapConfig) -> tuple[ldap3.Server, ServerAddress]:
    address = parse_url(cfg.url, cfg.start_tls)
    tls = _tls(cfg, address.host) if address.use_ssl or cfg.start_tls else None
    server = ldap3.Server(
        address.host,
        port=address.port,
        use_ssl=address.use_ssl,
        tls=tls,
        get_info=ldap3.NONE,
        connect_timeout=cfg.timeout,
    )
    return server, address


def kind_of(exc: Exception) -> str:
    """The :attr:`LdapError.kind` of an ldap3 or socket exception (as :func:`describe`
    sorts them)."""
    if isinstance(exc, ldap_exc.LDAPInvalidCredentialsResult):
        return "credentials"
    if isinstance(exc, ldap_exc.LDAPStartTLSError | ldap_exc.LDAPCertificateError) or (
        isinstance(exc, ldap_exc.LDAPSocketOpenError) and "certificate" in str(exc).lower()
    ):
        return "tls"
    if isinstance(exc, ldap_exc.LDAPSocketOpenError | ldap_exc.LDAPSocketReceiveError):
        return "unreachable"
    return "error"


def describe(exc: Exception, cfg: LdapConfig) -> str:
    """An operator-readable sentence for an ldap3 or socket exception."""
    where = cfg.url
    kind = kind_of(exc)
    if kind == "credentials":
        return f"bind as {cfg.bind_dn!r} at {where} failed: invalid credentials"
    if kind == "tls":
        return f"TLS with {where} failed (certificate not trusted or wrong host name): {exc}"
    if kind == "unreachable":
        return f"cannot reach LDAP server {where}: {exc}"
    if isinstance(exc, ldap_exc.LDAPOperationResult):
        return f"LDAP server {where} answered {exc.description}: {exc.message or ''}".strip()
    if isinstance(exc, ldap_exc.LDAPException | OSError):
        return f"LDAP error with {where}: {type(exc).__name__}: {exc}"
    return f"unexpected error talking to {where}: {type(exc).__name__}"


def _open(cfg: LdapConfig, bind_dn: str, password: str) -> ldap3.Connection:
    server, _ = _server(cfg)
    conn = ldap3.Connection(
        server,
        user=bind_dn,
        password=password,
        raise_exceptions=True,
        receive_timeout=max(cfg.timeout, 30),
        read_only=True,
        auto_referrals=False,
    )
    try:
        conn.open()
        if cfg.start_tls:
            conn.start_tls()
        conn.bind()
    except Exception:
        with contextlib.suppress(Exception):  # the socket may already be broken
            conn.unbind()
        raise
    return conn


def connect(cfg: LdapConfig) -> ldap3.Connection:
    """A connection bound as the configured service account, over TLS unless loopback.

    Raises :class:`LdapError` on an unreachable server, a TLS failure, bad
    credentials, or an empty service password.
    """
    if not cfg.bind_password:
        raise LdapError("the bind password is empty; an LDAP bind needs a password",
                        "credentials")
    try:
        return _open(cfg, cfg.bind_dn, cfg.bind_password)
    except LdapError:
        raise
    except Exception as exc:
        raise LdapError(describe(exc, cfg), kind_of(exc)) from None


def check_password(cfg: LdapConfig, user_dn: str, password: str) -> bool:
    """True when a simple bind as ``user_dn`` with ``password`` succeeds.

    An empty or oversized password, or a DN that is not a DN, is False without
    contacting the server. Wrong credentials are False; an unreachable server or a
    TLS failure raises :class:`LdapError` (the caller fails closed).
    """
    if not password or len(password) > MAX_PASSWORD_LENGTH or not user_dn:
        return False
    try:
        conn = _open(cfg, user_dn, password)
    except ldap_exc.LDAPInvalidCredentialsResult:
        return False
    except (ldap_exc.LDAPInvalidDnError, ldap_exc.LDAPInvalidDNSyntaxResult):
        return False
    except Exception as exc:
        raise LdapError(describe(exc, cfg), kind_of(exc)) from None
    try:
        return bool(conn.bound)
    finally:
        conn.unbind()


def validate_filter(text: str) -> str:
    """The filter itself when it is a well-formed RFC 4515 filter, else :class:`LdapError`."""
    from ldap3.operation.search import parse_filter

    candidate = text.strip()
    if not candidate.startswith("("):
        candidate = f"({candidate})"
    try:
        parse_filter(candidate, None, False, False, None, False)
    except Exception:
        raise LdapError(f"invalid LDAP filter {text!r} (RFC 4515)") from None
    return candidate


def paged_entries(
    conn: ldap3.Connection,
    base_dn: str,
    search_filter: str,
    attributes: list[str],
    page_size: int,
) -> Iterator[list[LdapEntry]]:
    """The entries under ``base_dn`` matching ``search_filter``, page by page.

    Uses the Simple Paged Results control (RFC 2696), so directories larger than
    the server's size limit (AD's MaxPageSize) are read completely. A search
    failure in any page raises :class:`LdapError`; callers must never treat a
    broken search as an empty directory.
    """
    page: list[LdapEntry] = []
    try:
        for item in conn.extend.standard.paged_search(
            base_dn,
            search_filter,
            search_scope=ldap3.SUBTREE,
            attributes=attributes,
            paged_size=page_size,
            generator=True,
        ):
            if item.get("type") != "searchResEntry":
                continue
            page.append(LdapEntry(item["dn"], dict(item.get("attributes") or {})))
            if len(page) >= page_size:
                yield page
                page = []
    except ldap_exc.LDAPException as exc:
        raise LdapError(f"search under {base_dn!r} failed: {_brief(exc)}", "search") from None
    except OSError as exc:
        raise LdapError(
            f"search under {base_dn!r} failed: {type(exc).__name__}", "unreachable"
        ) from None
    result = conn.result or {}
    if result.get("result", 0) not in (0, None):
        raise LdapError(f"search under {base_dn!r} failed: {result.get('description')}",
                        "search")
    if page:
        yield page


def _brief(exc: Exception) -> str:
    if isinstance(exc, ldap_exc.LDAPOperationResult):
        return f"{exc.description} {exc.message or ''}".strip()
    return f"{type(exc).__name__}: {exc}"


def entry_id(entry: LdapEntry, id_attribute: str) -> str | None:
    """The entry's stable id as text: a GUID string for ``objectGUID``
    ([MS-DTYP] 2.3.4, little-endian), the value otherwise; None when absent.

    With ``auto`` the first of objectGUID, entryUUID (RFC 4530) and nsUniqueId
    present is used.
    """
    names = AUTO_ID_ATTRIBUTES if id_attribute == AUTO_ID else (id_attribute,)
    for name in names:
        value = entry.first(name)
        if value is None or value == "" or value == b"":
            continue
        if isinstance(value, bytes):
            if len(value) == 16:
                return str(uuid.UUID(bytes_le=value))
            return value.hex()
        text = str(value).strip()
        if text.startswith("{") and text.endswith("}"):
            text = text[1:-1]  # ldap3 formats objectGUID as "{...}" when it knows the schema
        return text.lower() if name.lower() in ("objectguid", "entryuuid") else text
    return None


def is_disabled(entry: LdapEntry) -> bool:
    """True when AD's userAccountControl has ACCOUNTDISABLE (0x2) set."""
    raw = entry.first(USER_ACCOUNT_CONTROL)
    if raw is None:
        return False
    try:
        return bool(int(raw) & ACCOUNTDISABLE)
    except (TypeError, ValueError):
        return False


def escape(value: str) -> str:
    """``value`` escaped for use inside an RFC 4515 filter assertion."""
    return str(escape_filter_chars(value))
