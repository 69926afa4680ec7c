"""Okta preset of the OIDC connector: the org authorization server
(``https://acme.okta.com``) or a custom one (``https://acme.okta.com/oauth2/default``).

Okta's two kinds of authorization server have different issuers and key sets; a
token of one is never valid for the other, so the issuer is checked against the
shape the admin configured (developer.okta.com/docs/concepts/auth-servers). The
``groups`` scope is requested so group membership can map to unit roles.

Okta issues a "thin" ID token in the authorization code flow: profile and email claims
(and ``groups`` unless a groups claim is configured for the ID token) come only from
``/userinfo`` (developer.okta.com/docs/concepts/api-access-management, "ID token
claims"). The generic connector asks UserInfo when they are missing; this preset also
asks when ``groups`` is missing.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from typing import Any

from connectors import ConfigurationError
from connectors.oidc import MetadataCache, OidcConnector

CUSTOM_SERVER_PATH = re.compile(r"^(?:/[A-Za-z0-9._-]+)*/oauth2/[A-Za-z0-9_-]+$")


def server_kind(issuer: str) -> str:
    """``org`` or ``custom`` from the issuer URL's path; ConfigurationError otherwise."""
    path = urllib.parse.urlsplit(issuer).path.rstrip("/")
    if not path:
        return "org"
    if CUSTOM_SERVER_PATH.match(path):
        return "custom"
    raise ConfigurationError(
        "an Okta issuer is the org URL (https://acme.okta.com) or a custom authorization "
        "server (https://acme.okta.com/oauth2/<id>)"
    )


class OktaConnector(OidcConnector):
    kind = "okta"
    default_scopes = ("openid", "email", "profile", "groups")

    def __init__(self, settings: Mapping[str, Any], secret: str | None, cache: MetadataCache):
        super().__init__(settings, secret, cache)
        self.issuer = self.issuer.rstrip("/")
        self.server_kind = server_kind(self.issuer)

    def lacks_claims(self, claims: Mapping[str, Any]) -> bool:
        if super().lacks_claims(claims):
            return True
        return "groups" in self.scopes and "groups" not in claims
