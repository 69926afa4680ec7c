"""The declarative configuration file of ``idp apply`` and ``idp export`` (version 1).

A YAML (or JSON) document; unknown keys are errors, so a typo never passes silently::

    version: 1
    units:
      - slug: acme                      # the key: units are matched by slug
        name: ACME GmbH
        type: company                   # company | person
        parent: null                    # slug of the parent unit
        permission_groups: [buyers]
        require_totp: false             # members must add a TOTP second factor
        fresh_code_every_sign_in: false # a new code (or SSO sign-in) at every sign-in
        passwords_allowed: false        # members may also sign in with a password
        notify_impersonation: true      # e-mail members when someone acts as them
        passkey_counts_as_fresh: false  # a passkey with user verification counts as a fresh code
        profile_fields:
          - {name: ship_to, label: Ship-to address, required: true}
          - name: purchase_limit          # text | number | money | date | choice | email | phone
            type: money
            currency: EUR
            set_by: company               # employee (default) | company: not the employee's
            labels: {en: Purchase limit, de: Einkaufslimit}
            help: {en: Set by your company., de: Legt Ihre Firma fest.}
        connectors:                     # matched by name within the unit
          - name: ACME Okta
            kind: okta                  # google | microsoft | okta | oidc | saml
            issuer: https://acme.okta.example
            client_id: 0oa1example
            client_secret_env: ACME_OKTA_SECRET   # read from the environment
            scim_external_id_claim: sub # links email-less SCIM users by externalId
        domains:                        # matched by name
          - name: acme.example          # "*.acme.example" includes subdomains
            rules:
              auto_join: true
              default_role: employee
              require_sso: true
              connector: ACME Okta      # a connector name of the unit or a parent
              subunit_attribute: department
              subunits: {Sales: acme-sales}
              break_glass: [root@acme.example]
    clients:                            # merchants; matched by client_id, else name
      - name: Office Supplies Shop
        redirect_uris: [https://shop.example/callback]
        required_claims: [email]        # the rest the employee may leave out (default: email)
        # every other key is optional; left out, it stays as it is (new clients: default)
        post_logout_redirect_uris: [https://shop.example/bye]
        scope: openid profile email     # the scopes the client may ask for
        grant_types: [authorization_code, refresh_token]   # and client_credentials
        token_endpoint_auth_method: client_secret_basic   # _post | private_key_jwt | none
        id_token_signed_response_alg: ES256               # ES256 | RS256
        jwks: {keys: [...]}             # private_key_jwt: public keys, or
        jwks_uri: https://shop.example/jwks.json          # where the client publishes them
        require_pushed_authorization_requests: false      # true: only pushed requests (PAR)
        dpop_bound_access_tokens: false                   # true: token requests need DPoP
        backchannel_logout_uri: https://shop.example/bc   # null or "" removes it
        backchannel_logout_session_required: false        # logout tokens must carry sid
        frontchannel_logout_uri: https://shop.example/fc  # origin of a redirect URI
        frontchannel_logout_session_required: false       # the frame gets iss and sid

    saml_sps:                           # SAML service providers; matched by entity_id
      - entity_id: https://travel.example/saml
        name: Travel Portal
        metadata: https://travel.example/saml/metadata   # or a file path, or the XML
        nameid_format: persistent       # persistent | email | transient
        sign_assertion: true            # at least one of assertion and response
        sign_response: true
        require_signed_requests: false  # true: unsigned AuthnRequests are refused
        idp_initiated: false            # true: IdP-initiated SSO is allowed

A key you write is authoritative, a key you leave out is left as it is: a
``profile_fields``, ``domains`` or ``connectors`` list names *all* of them (others
are removed), while a unit without that key keeps what it has. Units, clients and
SAML SPs missing from the file are never deleted.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    def given(self, name: str) -> bool:
        """True when the file wrote the key ``name`` (even as null)."""
        return name in self.model_fields_set


class FieldSpec(Spec):
    name: str = Field(max_length=64)
    label: str | None = Field(None, max_length=200)
    required: bool = False
    # typed fields (idp.units.field_types; docs/companies.md)
    type: Literal["text", "number", "money", "date", "choice", "email", "phone"] = "text"
    currency: str | None = Field(None, max_length=3)
    choices: list[str] | None = None
    labels: dict[str, str] | None = None
    help: dict[str, str] | None = None
    set_by: Literal["employee", "company"] = "employee"


class RulesSpec(Spec):
    auto_join: bool | None = None
    default_role: str | None = Field(None, max_length=64)
    require_sso: bool | None = None
    connector: str | None = Field(None, max_length=200)
    subunit_attribute: str | None = Field(None, max_length=64)
    subunits: dict[str, str] | None = None
    break_glass: list[str] | None = None


class DomainSpec(Spec):
    name: str = Field(max_length=260)
    rules: RulesSpec | None = None


class ConnectorSpec(Spec):
    name: str = Field(min_length=1, max_length=200)
    kind: Literal["google", "microsoft", "okta", "oidc", "saml"]
    enabled: bool | None = None
    issuer: str | None = Field(None, max_length=2000)
    client_id: str | None = Field(None, max_length=500)
    client_secret_env: str | None = Field(None, max_length=200)
    metadata: str | None = Field(None, max_length=2000)
    tenants: list[str] | None = None
    hosted_domains: list[str] | None = None
    scopes: list[str] | None = None
    mapping: dict[str, Any] | None = None
    role_map: dict[str, Any] | None = None
    default_roles: list[str] | None = None
    subject_attribute: str | None = Field(None, max_length=200)
    scim_external_id_claim: str | None = Field(None, max_length=200)


class UnitSpec(Spec):
    slug: str = Field(max_length=100)
    name: str | None = Field(None, max_length=200)
    type: Literal["company", "person"] | None = None
    parent: str | None = Field(None, max_length=100)
    permission_groups: list[str] | None = None
    require_totp: bool | None = None
    fresh_code_every_sign_in: bool | None = None
    passwords_allowed: bool | None = None
    notify_impersonation: bool | None = None
    passkey_counts_as_fresh: bool | None = None
    profile_fields: list[FieldSpec] | None = None
    connectors: list[ConnectorSpec] | None = None
    domains: list[DomainSpec] | None = None


class ClientSpec(Spec):
    name: str = Field(min_length=1, max_length=200)
    client_id: str | None = Field(None, max_length=64)
    redirect_uris: list[str] | None = None
    post_logout_redirect_uris: list[str] | None = None
    scope: str | None = Field(None, max_length=1000)
    grant_types: list[str] | None = None
    token_endpoint_auth_method: str | None = Field(None, max_length=40)
    id_token_signed_response_alg: str | None = Field(None, max_length=10)
    jwks: dict[str, Any] | None = None
    jwks_uri: str | None = Field(None, max_length=2000)
    # the claims the merchant requires (idp.release.items); left out: the default
    required_claims: list[str] | None = None
    # RFC 9126 §6 / RFC 9449 §5.2; left out: unchanged (new clients: false)
    require_pushed_authorization_requests: bool | None = None
    dpop_bound_access_tokens: bool | None = None
    # logout channels (idp.interaction.rp_logout); null or "" removes the channel
    backchannel_logout_uri: str | None = Field(None, max_length=2000)
    backchannel_logout_session_required: bool | None = None
    frontchannel_logout_uri: str | None = Field(None, max_length=2000)
    frontchannel_logout_session_required: bool | None = None


class SamlSpSpec(Spec):
    entity_id: str = Field(min_length=1, max_length=500)
    name: str | None = Field(None, min_length=1, max_length=200)
    # an https URL, a file path, or the XML itself (what idp export writes)
    metadata: str | None = Field(None, min_length=1)
    nameid_format: str | None = Field(None, max_length=20)  # persistent | email | transient
    sign_assertion: bool | None = None
    sign_response: bool | None = None
    require_signed_requests: bool | None = None
    idp_initiated: bool | None = None


class ConfigFile(Spec):
    version: Literal[1]
    units: list[UnitSpec] = Field(default_factory=list)
    clients: list[ClientSpec] = Field(default_factory=list)
    saml_sps: list[SamlSpSpec] = Field(default_factory=list)


# Connector settings keys that a file may set, per spec field (OIDC kinds).
CONNECTOR_SETTING_KEYS = (
    "client_id", "tenants", "hosted_domains", "scopes", "mapping", "role_map",
    "default_roles", "subject_attribute", "scim_external_id_claim",
)
