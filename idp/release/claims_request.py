"""The ``claims`` request parameter (OpenID Connect Core 1.0 §5.5).

A merchant may ask for individual claims, for the ID token and/or UserInfo:

    {"id_token": {"email": {"essential": true}},
     "userinfo": {"given_name": null, "org_name": {"value": "Acme"}}}

Rules:

* Only claims Unitgate knows (:data:`idp.release.claims.SUPPORTED_CLAIMS`) whose scope
  the client is registered for are kept; others are ignored (§5.5: "not an error").
* A kept claim is released only when the employee consented to it: it is listed on
  the consent page, and recorded with the consent, like the claims of a scope.
* ``essential`` changes nothing in what is released; a missing essential claim is not
  an error (§5.5.1).
* ``value`` / ``values``: the claim is released only when its value is that one (or
  one of those). Unitgate never sends a value it does not hold.
* ``sub`` with ``value``: only that account may complete the request (§5.5.1.1).
* ``acr`` with ``essential`` and ``values`` naming the MFA level works like
  ``acr_values``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from idp.release.claims import SCOPE_CLAIMS, SUPPORTED_CLAIMS, released_claims
from idp.store.models import Account

TARGETS = ("userinfo", "id_token")
MAX_VALUES = 20
# Claims about the authentication itself: requestable, never filtered as profile data.
TOKEN_CLAIMS = ("acr", "auth_time")

ClaimsRequest = dict[str, dict[str, dict[str, Any] | None]]


class InvalidClaims(ValueError):
    """The ``claims`` parameter is not a valid claims request."""


def parse(text: str | None) -> ClaimsRequest:
    """The claims request in ``text`` (JSON), shape-checked; {} when absent."""
    if not text:
        return {}
    try:
        doc = json.loads(text)
    except ValueError:
        raise InvalidClaims("The claims parameter is not JSON.") from None
    if not isinstance(doc, dict):
        raise InvalidClaims("The claims parameter must be a JSON object.")
    out: ClaimsRequest = {}
    for target in TARGETS:
        members = doc.get(target)
        if members is None:
            continue
        if not isinstance(members, dict):
            raise InvalidClaims(f"claims.{target} must be a JSON object.")
        kept: dict[str, dict[str, Any] | None] = {}
        for name, spec in members.items():
            kept[str(name)] = _spec(target, str(name), spec)
        out[target] = kept
    return out


def _spec(target: str, name: str, spec: Any) -> dict[str, Any] | None:
    if spec is None:
        return None
    if not isinstance(spec, dict):
        raise InvalidClaims(f"claims.{target}.{name} must be null or a JSON object.")
    out: dict[str, Any] = {}
    if "essential" in spec:
        if not isinstance(spec["essential"], bool):
            raise InvalidClaims(f"claims.{target}.{name}.essential must be true or false.")
        out["essential"] = spec["essential"]
    if "value" in spec:
        out["value"] = spec["value"]
    if "values" in spec:
        values = spec["values"]
        if not isinstance(values, list) or len(values) > MAX_VALUES:
            raise InvalidClaims(f"claims.{target}.{name}.values must be a short JSON array.")
        out["values"] = values
    return out


def scope_of(claim: str) -> str | None:
    return next((s for s, names in SCOPE_CLAIMS.items() if claim in names), None)


def allowed(request: ClaimsRequest, client_scopes: Iterable[str]) -> ClaimsRequest:
    """``request`` without the claims the client may never receive: unknown claims and
    claims of scopes the client is not registered for (``sub`` and the token claims
    always stay)."""
    permitted = set(client_scopes)
    out: ClaimsRequest = {}
    for target, members in request.items():
        kept = {
            name: spec for name, spec in members.items()
            if name in ("sub", *TOKEN_CLAIMS)
            or (name in SUPPORTED_CLAIMS and scope_of(name) in permitted)
        }
        if kept:
            out[target] = kept
    return out


def names(request: ClaimsRequest) -> list[str]:
    """Every profile claim asked for, in request order, for consent (not ``sub`` and
    not the token claims, which are no personal data)."""
    seen = [n for members in request.values() for n in members]
    return [n for n in dict.fromkeys(seen) if n not in ("sub", *TOKEN_CLAIMS)]


def essential(request: ClaimsRequest) -> list[str]:
    return [n for members in request.values() for n, spec in members.items()
            if spec and spec.get("essential")]


def wanted_subject(request: ClaimsRequest) -> str | None:
    """The ``sub`` value the request insists on, if any (§5.5.1.1)."""
    for members in request.values():
        spec = members.get("sub")
        if spec and isinstance(spec.get("value"), str):
            return str(spec["value"])
    return None


def wanted_acr(request: ClaimsRequest) -> str | None:
    """The ``acr`` values of an essential ``acr`` request, as ``acr_values`` text."""
    spec = (request.get("id_token") or {}).get("acr")
    if not spec or not spec.get("essential"):
        return None
    values = spec.get("values") or ([spec["value"]] if "value" in spec else [])
    return " ".join(str(v) for v in values) or None


def release(
    request: ClaimsRequest, target: str, account: Account, unit_id: str | None,
    withheld: Iterable[str] = (),
) -> dict[str, Any]:
    """The claims ``target`` (``userinfo`` or ``id_token``) gets for ``request`` on
    top of its scopes' claims: each requested claim with a value, when that value
    matches a requested ``value``/``values``; never a ``withheld`` item."""
    members = request.get(target) or {}
    profile = [n for n in members if n in SUPPORTED_CLAIMS and n != "sub"]
    if not profile:
        return {}
    scopes = [s for s in SCOPE_CLAIMS if any(n in SCOPE_CLAIMS[s] for n in profile)]
    values = released_claims(account, scopes, unit_id, withheld)
    out: dict[str, Any] = {}
    for name in profile:
        if name in values and _matches(members[name], values[name]):
            out[name] = values[name]
    return out


def _matches(spec: dict[str, Any] | None, actual: Any) -> bool:
    if not spec:
        return True
    if "value" in spec and actual != spec["value"]:
        return False
    return not ("values" in spec and actual not in spec["values"])
