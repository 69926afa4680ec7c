"""Microsoft Entra ID preset of the OIDC connector (v2.0 endpoints).

Rules (learn.microsoft.com, "Microsoft identity platform ID tokens" and
"Migrate away from using email claims for user identification"):

* **Single-tenant** (one tenant id): discovery at ``<authority>/<tid>/v2.0`` whose
  issuer is ``<authority>/<tid>/v2.0``.
* **Multi-tenant** (several tenant ids): discovery at ``<authority>/organizations/v2.0``
  whose issuer is the template ``<authority>/{tenantid}/v2.0``. The token's ``tid``
  must be one of the allowed tenant ids and ``iss`` must equal the template with
  ``{tenantid}`` replaced by that ``tid``: a token from any other tenant is refused,
  even though Microsoft signs it with the same keys.
* Accounts are keyed on ``tid`` + ``oid`` (subject ``<tid>/<oid>``), never on
  ``email``/``preferred_username``, which tenant admins can set to anything.
* ``email`` counts as verified only when the optional claim ``xms_edov`` (email
  domain owner verified) is true; otherwise it is not used for linking or sign-up.
* UserInfo is never asked. Entra's UserInfo lives at Microsoft Graph, needs a Graph
  access token and has no ``xms_edov``, so it could not vouch for an address. Entra
  puts ``email`` and the names in the ID token when the app asks for the ``email`` and
  ``profile`` scopes (and the optional claims).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from connectors import ConfigurationError, ConnectorError, UpstreamIdentity
from connectors.http import check_url
from connectors.oidc import MetadataCache, OidcConnector

AUTHORITY = "https://login.microsoftonline.com"
TEMPLATE = "{tenantid}"
TENANT_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def edov(claims: Mapping[str, Any]) -> bool:
    """True when ``xms_edov`` says the email's domain owner verified it."""
    return claims.get("xms_edov") in (True, 1, "1", "true", "True")


class MicrosoftConnector(OidcConnector):
    kind = "microsoft"

    def __init__(self, settings: Mapping[str, Any], secret: str | None, cache: MetadataCache):
        values = dict(settings)
        tenants = [str(t).strip().lower() for t in values.get("tenants") or []]
        if not tenants:
            raise ConfigurationError("a Microsoft connector needs at least one --tenant ID")
        bad = [t for t in tenants if not TENANT_ID.match(t)]
        if bad:
            raise ConfigurationError(f"tenant ids are GUIDs; not one: {bad[0]!r}")
        self.authority = str(values.get("authority") or AUTHORITY).rstrip("/")
        check_url(self.authority, "authority")
        self.tenants = tenants
        self.multi_tenant = len(tenants) > 1 or bool(values.get("multi_tenant"))
        path = "organizations" if self.multi_tenant else tenants[0]
        values["issuer"] = f"{self.authority}/{path}/v2.0"
        super().__init__(values, secret, cache)

    def issuer_for(self, tid: str) -> str:
        return f"{self.authority}/{tid}/v2.0"

    def discovery_issuer(self) -> str:
        if self.multi_tenant:
            return self.issuer_for(TEMPLATE)
        return self.issuer

    def expected_issuer(self, claims: Mapping[str, Any]) -> str:
        """The tenant-specific issuer for the token's allowed ``tid``."""
        tid = claims.get("tid")
        if not isinstance(tid, str) or tid.lower() not in self.tenants:
            raise ConnectorError("tenant_not_allowed", f"tenant {str(tid)[:64]!r} not allowed")
        return self.issuer_for(tid)

    def response_issuer_ok(self, iss: str) -> bool:
        return iss in {self.issuer_for(t) for t in self.tenants}

    def lacks_claims(self, claims: Mapping[str, Any]) -> bool:
        return False

    def check_claims(self, claims: Mapping[str, Any]) -> None:
        oid = claims.get("oid")
        if not isinstance(oid, str) or not oid or len(oid) > 64:
            raise ConnectorError("invalid_subject", "Entra id_token without oid")

    def identity(self, claims: Mapping[str, Any]) -> UpstreamIdentity:
        tid = str(claims["tid"]).lower()
        email = claims.get("email")
        trusted = isinstance(email, str) and edov(claims)
        return UpstreamIdentity(
            issuer=str(claims["iss"]),
            subject=f"{tid}/{claims['oid']}",
            claims=dict(claims),
            email=email if trusted else None,
            email_verified=trusted,
            amr=[str(a) for a in claims.get("amr") or [] if isinstance(a, str)],
        )
