"""Google Workspace preset of the OIDC connector.

Google signs in any Google account, consumer ones included. A business unit only
accepts accounts of its own Workspace: the ID token's ``hd`` (hosted domain) claim
must equal one of the connector's ``hosted_domains``
(developers.google.com/identity/openid-connect/openid-connect, "hd"), and the
federation service also checks that domain is verified for the unit. Consumer
accounts carry no ``hd`` and are refused. ``hd`` is also sent as a hint in the
authorization request, which only narrows Google's account chooser and is never
trusted by itself.

Google's ID token carries ``hd``, ``email`` and ``email_verified``; the names are not
guaranteed there. When a claim is missing, the generic connector asks Google's
UserInfo endpoint (announced in its discovery document), whose ``sub`` must match.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors import ConfigurationError, ConnectorError, UpstreamIdentity
from connectors.oidc import MetadataCache, OidcConnector

GOOGLE_ISSUER = "https://accounts.google.com"
CONSUMER_DOMAINS = frozenset({"gmail.com", "googlemail.com"})


def normalise_domain(domain: str) -> str:
    return domain.strip().lower().rstrip(".")


class GoogleConnector(OidcConnector):
    kind = "google"

    def __init__(self, settings: Mapping[str, Any], secret: str | None, cache: MetadataCache):
        super().__init__(settings, secret, cache)
        domains = [normalise_domain(d) for d in self.settings.get("hosted_domains") or []]
        if not domains:
            raise ConfigurationError("a Google connector needs --hd DOMAIN (the Workspace domain)")
        consumer = [d for d in domains if d in CONSUMER_DOMAINS]
        if consumer:
            raise ConfigurationError(f"consumer domain refused as hosted domain: {consumer[0]}")
        self.hosted_domains = domains

    def default_issuer(self) -> str:
        return GOOGLE_ISSUER

    def expected_issuer(self, claims: Mapping[str, Any]) -> str:
        # Google documents both spellings for its own issuer only.
        if self.issuer == GOOGLE_ISSUER and claims.get("iss") == "accounts.google.com":
            return "accounts.google.com"
        return self.issuer

    def authorization_params(self) -> dict[str, str]:
        params = super().authorization_params()
        if len(self.hosted_domains) == 1:
            params.setdefault("hd", self.hosted_domains[0])
        return params

    def check_claims(self, claims: Mapping[str, Any]) -> None:
        """``hd`` must be present and one of the configured Workspace domains."""
        hd = claims.get("hd")
        if not isinstance(hd, str) or normalise_domain(hd) not in self.hosted_domains:
            raise ConnectorError(
                "hosted_domain_mismatch",
                f"Google account hd={str(hd)[:100]!r} is not one of {self.hosted_domains}",
            )

    def identity(self, claims: Mapping[str, Any]) -> UpstreamIdentity:
        base = super().identity(claims)
        return UpstreamIdentity(
            issuer=GOOGLE_ISSUER if base.issuer == "accounts.google.com" else base.issuer,
            subject=base.subject,
            claims=base.claims,
            email=base.email,
            email_verified=base.email_verified,
            amr=base.amr,
            hosted_domain=normalise_domain(str(claims["hd"])),
        )
