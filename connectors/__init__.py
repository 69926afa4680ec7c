"""Upstream identity providers behind one small interface.

A connector speaks one upstream protocol and nothing else: it knows neither
accounts nor business units nor which protocol the merchant spoke. Unitgate's
federation service (``idp.federation``) drives it in two steps:

1. :meth:`UpstreamConnector.start` returns a :class:`StartRequest`: the URL to send
   the browser to, and the ``pending`` state (nonce, PKCE verifier, request id) the
   caller keeps in the ephemeral store under the one-time ``state`` value;
2. :meth:`UpstreamConnector.callback` takes the upstream's answer (the query of an
   OIDC redirect, the form of a SAML POST) and that ``pending`` state, validates
   everything, and returns an :class:`UpstreamIdentity`, or raises
   :class:`ConnectorError`.

Kinds: ``oidc`` (generic OpenID Connect, :mod:`connectors.oidc`) with the presets
``google``, ``microsoft`` and ``okta``, and ``saml`` (:mod:`connectors.saml`).
:func:`build` turns a kind and its settings into a connector object.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

KINDS = ("google", "microsoft", "okta", "oidc", "saml")


class ConnectorError(Exception):
    """The upstream answer is invalid or the upstream cannot be reached.

    ``code`` is a short machine-readable reason (``invalid_issuer``, ``nonce_mismatch``,
    ...) that tests and logs use; the message is for operators, never shown raw to
    end users.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class ConfigurationError(ValueError):
    """A connector's settings are incomplete or unsafe (raised when configuring)."""


@dataclass(frozen=True)
class UpstreamIdentity:
    """Who the upstream says signed in.

    ``issuer`` and ``subject`` are the stable key (for Microsoft ``subject`` is
    ``<tid>/<oid>``). ``email`` is only set when the upstream vouches that the
    address is verified; ``claims`` are the raw validated claims (or SAML
    attributes, lists of strings) for attribute mapping.
    """

    issuer: str
    subject: str
    claims: dict[str, Any]
    email: str | None = None
    email_verified: bool = False
    amr: list[str] = field(default_factory=list)
    hosted_domain: str | None = None


@dataclass(frozen=True)
class StartRequest:
    """Where to send the browser, and what to keep until the callback."""

    url: str
    pending: dict[str, Any]
    method: str = "GET"  # "GET": redirect to url; "POST": auto-submit form_fields to url
    form_fields: dict[str, str] = field(default_factory=dict)


ReplayGuard = Callable[[str, int], bool]
"""``first_use(key, ttl_seconds)``: True the first time ``key`` is seen within the
ttl, False for every later call (an atomic add in the shared ephemeral store)."""


class UpstreamConnector(Protocol):
    kind: str

    def start(self, redirect_uri: str, state: str, login_hint: str | None = None,
              force: bool = False) -> StartRequest:
        """Build the upstream authentication request bound to ``state``; ``force`` asks
        the upstream for a new sign-in whatever session it has (OIDC ``prompt=login``
        and ``max_age=0``, SAML ``ForceAuthn``)."""

    def callback(
        self,
        params: Mapping[str, str],
        pending: Mapping[str, Any],
        redirect_uri: str,
        first_use: ReplayGuard,
    ) -> UpstreamIdentity:
        """Validate the upstream's answer; raise :class:`ConnectorError` if anything is off."""


def build(
    kind: str,
    settings: Mapping[str, Any],
    secret: str | None,
    cache: Any,
    sp_urls: Mapping[str, str] | None = None,
) -> UpstreamConnector:
    """A connector object for ``kind`` configured with ``settings`` and its ``secret``.

    ``cache`` is the app's :class:`connectors.oidc.MetadataCache` (discovery and JWKS
    documents); ``sp_urls`` gives SAML connectors their own entity id and ACS URL.
    Raises :class:`ConfigurationError` for an unknown kind or incomplete settings.
    """
    if kind == "saml":
        from connectors.saml import SamlConnector

        return SamlConnector(settings, secret, dict(sp_urls or {}))
    from connectors.google import GoogleConnector
    from connectors.microsoft import MicrosoftConnector
    from connectors.oidc import OidcConnector
    from connectors.okta import OktaConnector

    classes: dict[str, type[OidcConnector]] = {
        "oidc": OidcConnector,
        "google": GoogleConnector,
        "microsoft": MicrosoftConnector,
        "okta": OktaConnector,
    }
    if kind not in classes:
        raise ConfigurationError(f"unknown connector kind {kind!r}; one of {', '.join(KINDS)}")
    return classes[kind](settings, secret, cache)
