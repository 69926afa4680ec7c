"""``idp export``: the current configuration in the ``idp apply`` file format.

Applying an export to the database it came from changes nothing. Exported:
units (parents first) with their permission groups, profile fields, connectors
(public settings only: add ``client_secret_env`` to apply on another instance; SAML
connectors need ``metadata`` there), domains with rules; and merchant clients with
their ``client_id``, every option (PAR, DPoP, keys) and their logout channels (never
secrets); and SAML service providers with their options and metadata (public: it
re-registers them on another instance). Domain verification state is not exported: it
is proven by DNS on each instance.
"""

from __future__ import annotations

from typing import Any

import yaml

from idp.config import connectors as config_connectors
from idp.config import saml_sps as config_sps
from idp.domains import registry as domains
from idp.domains import rules as domain_rules
from idp.interaction import rp_logout
from idp.store import connectors_repo, domains_repo, units_repo
from idp.store.models import Domain, Unit
from idp.units import registry as units


def _depth(unit: Unit) -> int:
    return len(units.ancestors(unit))


def _rules(domain: Domain) -> dict[str, Any] | None:
    if domain.rule is None:
        return None
    data = domain_rules.rules_of(domain)
    conn_id = data.pop("sso_connector_id")
    conn = connectors_repo.get(conn_id) if conn_id else None
    rules: dict[str, Any] = {
        "auto_join": data["auto_join"],
        "default_role": data["default_role"],
        "require_sso": data["require_sso"],
    }
    if conn is not None:
        rules["connector"] = conn.name
    if data["subunit_attribute"]:
        rules["subunit_attribute"] = data["subunit_attribute"]
    if data["subunits"]:
        rules["subunits"] = data["subunits"]
    if data["break_glass"]:
        rules["break_glass"] = data["break_glass"]
    return rules


def _unit(unit: Unit) -> dict[str, Any]:
    parent = units_repo.by_id(unit.parent_id) if unit.parent_id else None
    out: dict[str, Any] = {"slug": unit.slug, "name": unit.name, "type": unit.kind}
    out["parent"] = parent.slug if parent else None
    out["permission_groups"] = units.group_names(unit)
    out["require_totp"] = bool(unit.require_totp)
    out["fresh_code_every_sign_in"] = bool(unit.fresh_code_every_sign_in)
    out["passwords_allowed"] = bool(unit.passwords_allowed)
    out["notify_impersonation"] = bool(unit.notify_impersonation)
    out["passkey_counts_as_fresh"] = bool(unit.passkey_counts_as_fresh)
    out["profile_fields"] = [units.field_to_dict(f) for f in units_repo.fields(unit.id)]
    out["connectors"] = [config_connectors.export(c) for c in connectors_repo.list_all(unit.id)]
    out["domains"] = []
    for d in domains_repo.all_domains(unit.id):
        entry: dict[str, Any] = {"name": domains.display_name(d)}
        rules = _rules(d)
        if rules is not None:
            entry["rules"] = rules
        out["domains"].append(entry)
    return out


def _client(client: Any) -> dict[str, Any]:
    from idp.release import clients

    data = clients.describe(client)
    out: dict[str, Any] = {"name": client.name, "client_id": client.client_id}
    for key in (
        "redirect_uris", "post_logout_redirect_uris", "scope", "grant_types",
        "token_endpoint_auth_method", "id_token_signed_response_alg",
    ):
        out[key] = data[key]
    if data.get("jwks"):
        out["jwks"] = data["jwks"]
    if data.get("jwks_uri"):
        out["jwks_uri"] = data["jwks_uri"]
    if data.get("required_claims") is not None:
        out["required_claims"] = data["required_claims"]
    out["require_pushed_authorization_requests"] = data["require_pushed_authorization_requests"]
    out["dpop_bound_access_tokens"] = data["dpop_bound_access_tokens"]
    channels = rp_logout.channels(client.client_id)
    for side in ("backchannel", "frontchannel"):
        uri = getattr(channels, f"{side}_logout_uri")
        if uri:  # a channel is exported with its flag; none registered: no keys
            out[f"{side}_logout_uri"] = uri
            out[f"{side}_logout_session_required"] = getattr(
                channels, f"{side}_logout_session_required"
            )
    return out


def export_config() -> dict[str, Any]:
    """The whole configuration as plain data (``version: 1``)."""
    from idp.release import clients

    ordered = sorted(units_repo.all_units(), key=lambda u: (_depth(u), u.slug))
    return {
        "version": 1,
        "units": [_unit(u) for u in ordered],
        "clients": [_client(c) for c in clients.list_all()],
        "saml_sps": config_sps.export(),
    }


def export_yaml() -> str:
    """:func:`export_config` as YAML, keys in a stable, readable order."""
    return yaml.safe_dump(export_config(), sort_keys=False, allow_unicode=True, width=100)
