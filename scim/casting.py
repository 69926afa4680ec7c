"""Casting between SCIM resources and the provisioning domain (RFC 7643 §4).

Inbound: a User or Group document is normalised (attribute names resolved
case-insensitively against :mod:`scim.schema`, unsupported attributes dropped,
Entra's string booleans and bare manager ids accepted), type-checked with
scim2-models, and turned into a :class:`~idp.provisioning.service.DirectoryUser` or
:class:`~idp.provisioning.unit_groups.DirectoryGroup`. Outbound: the domain objects become the
full JSON representation with ``meta`` (``version`` is the weak ETag
``W/"<version>"``). The domain never sees SCIM.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ValidationError
from scim2_models import EnterpriseUser, Group, User

from idp.provisioning.service import DirectoryUser
from idp.provisioning.unit_groups import DirectoryGroup
from scim.errors import ScimError, bad_request
from scim.schema import ENTERPRISE, GROUP, UNIT, USER, Attr, ResourceSchema

_USER_MODEL = User[EnterpriseUser]
TRUE_FALSE = {"true": True, "false": False}


def etag(version: int) -> str:
    return f'W/"{version}"'


def parse_etags(header: str | None) -> list[str] | None:
    """The entity tags of an ``If-Match`` header (``*`` kept), or None without one."""
    if header is None or not header.strip():
        return None
    return [t.strip() for t in header.split(",") if t.strip()]


def version_from_etags(tags: list[str] | None) -> int | None:
    """The version an ``If-Match`` demands; None for ``*`` or no header.

    A tag we never issued can never match: it maps to version 0, which no resource has
    (so do digits too long for a database integer).
    """
    if not tags or "*" in tags:
        return None
    for tag in tags:
        text = tag[2:] if tag.startswith("W/") else tag
        text = text.strip('"')
        if text.isdigit():
            return int(text) if len(text) <= 18 and text.isascii() else 0
    return 0


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


# -- normalisation -------------------------------------------------------------------


def boolean(value: Any, name: str) -> bool:
    """A JSON boolean, or Entra's ``"True"``/``"False"`` strings."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in TRUE_FALSE:
        return TRUE_FALSE[value.strip().lower()]
    raise bad_request(f"{name} must be true or false")


def normalise(doc: Any, schema: ResourceSchema) -> dict[str, Any]:
    """Canonical attribute names, only supported attributes, extensions nested under
    their URN; Entra's dotted or URN-prefixed keys are accepted too."""
    if not isinstance(doc, dict):
        raise ScimError(400, "the request body must be a JSON object", "invalidSyntax")
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if not isinstance(key, str) or key.lower() == "schemas":
            continue
        urn = schema.urn(key)
        if urn is not None and urn != schema.core:
            if value is None:
                continue
            if not isinstance(value, dict):
                raise bad_request(f"{urn} must be an object")
            ext = out.setdefault(urn, {})
            for sub_key, sub_value in value.items():
                _put(ext, schema, urn, str(sub_key), sub_value)
            continue
        target_urn, name = _split_urn(key, schema)
        if target_urn is not None and target_urn != schema.core:
            _put(out.setdefault(target_urn, {}), schema, target_urn, name, value)
        else:
            _put(out, schema, schema.core, name, value)
    return out


def _split_urn(key: str, schema: ResourceSchema) -> tuple[str | None, str]:
    if ":" not in key:
        return None, key
    urn, name = key.rsplit(":", 1)
    return schema.urn(urn), name


def _put(target: dict[str, Any], schema: ResourceSchema, urn: str, key: str, value: Any) -> None:
    name, _, sub = key.partition(".")
    found = schema.find(urn, name)
    if found is None:
        return
    attr = found[1]
    if attr.mutability == "readOnly":
        return
    if sub:
        child = attr.child(sub)
        if child is None or attr.multi or child.mutability == "readOnly":
            return
        holder = target.setdefault(attr.name, {})
        if isinstance(holder, dict):
            holder[child.name] = value
        return
    target[attr.name] = clean_value(attr, value)


def clean_value(attr: Attr, value: Any) -> Any:
    """``value`` shaped for ``attr``: booleans from strings, sub-attribute names
    canonical, unsupported and read-only sub-attributes dropped."""
    if value is None:
        return None
    if attr.type == "boolean":
        return boolean(value, attr.name)
    if attr.type == "complex":
        if attr.multi:
            items = value if isinstance(value, list) else [value]
            return [_clean_element(attr, v) for v in items]
        if isinstance(value, str) and attr.child("value") is not None:
            value = {"value": value}
        if not isinstance(value, dict):
            raise bad_request(f"{attr.name} must be an object")
        return {
            c.name: clean_value(c, v)
            for k, v in value.items()
            if (c := attr.child(str(k))) and c.mutability != "readOnly"
        }
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


def _clean_element(attr: Attr, value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        value = {"value": value}
    if not isinstance(value, dict):
        raise bad_request(f"elements of {attr.name} must be objects")
    return {
        c.name: clean_value(c, v)
        for k, v in value.items()
        if (c := attr.child(str(k))) and c.mutability != "readOnly"
    }


def _pick(elements: Any) -> dict[str, Any] | None:
    """The element Unitgate keeps: the primary one, else a work one, else the first."""
    items = [e for e in elements or [] if isinstance(e, dict) and e.get("value")]
    for test in (lambda e: e.get("primary") is True, lambda e: e.get("type") == "work"):
        chosen = next((e for e in items if test(e)), None)
        if chosen is not None:
            return chosen
    return items[0] if items else None


def _string(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad_request(f"{name} must be a string")
    return value


def _validate_with_model(model: Any, doc: dict[str, Any]) -> None:
    try:
        model.model_validate(doc, scim_ctx=None)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first.get("loc", ()))
        raise bad_request(f"{where}: {first.get('msg', 'invalid value')}") from None


# -- users ---------------------------------------------------------------------------


def user_from_document(doc: Any, schema: ResourceSchema) -> DirectoryUser:
    """A desired user from a SCIM User document (POST, PUT, or a patched view)."""
    if isinstance(doc, dict):  # before normalising, which would read 5 as "5"
        raw = next((v for k, v in doc.items()
                    if isinstance(k, str) and k.lower() == "username"), None)
        if raw is not None and not isinstance(raw, str):
            raise bad_request("userName must be a string")
    data = normalise(doc, schema)
    email = _pick(data.get("emails"))
    phone = _pick(data.get("phoneNumbers"))
    enterprise = dict(data.get(ENTERPRISE) or {})
    unit = dict(data.get(UNIT) or {})
    checked = {k: v for k, v in data.items() if k not in ("emails", "phoneNumbers", UNIT)}
    checked["schemas"] = [USER, ENTERPRISE] if ENTERPRISE in data else [USER]
    if isinstance(enterprise.get("manager"), dict):
        enterprise["manager"] = {"value": enterprise["manager"].get("value")}
        checked[ENTERPRISE] = enterprise
    _validate_with_model(_USER_MODEL, checked)
    name = data.get("name") or {}
    manager = enterprise.get("manager") or {}
    user_name = data.get("userName")
    if not isinstance(user_name, str) or not user_name.strip():
        raise bad_request("userName is required")
    return DirectoryUser(
        user_name=user_name,
        external_id=_string(data.get("externalId"), "externalId"),
        active=data.get("active") is not False,
        email=_string((email or {}).get("value"), "emails.value"),
        given_name=_string(name.get("givenName"), "name.givenName"),
        family_name=_string(name.get("familyName"), "name.familyName"),
        display_name=_string(data.get("displayName"), "displayName"),
        title=_string(data.get("title"), "title"),
        user_type=_string(data.get("userType"), "userType"),
        phone_number=_string((phone or {}).get("value"), "phoneNumbers.value"),
        locale=_string(data.get("locale"), "locale"),
        personnel_number=_string(enterprise.get("employeeNumber"), "employeeNumber"),
        cost_centre=_string(enterprise.get("costCenter"), "costCenter"),
        department=_string(enterprise.get("department"), "department"),
        manager_id=_string(manager.get("value"), "manager.value"),
        extras={k: _string(v, k) for k, v in unit.items()},
    )


def user_document(user: DirectoryUser, base: str, extra_names: list[str]) -> dict[str, Any]:
    """The full SCIM representation of a user (before attribute selection)."""
    doc: dict[str, Any] = {"schemas": [USER], "id": user.id}
    if user.external_id:
        doc["externalId"] = user.external_id
    doc["userName"] = user.user_name
    name = {k: v for k, v in (("givenName", user.given_name),
                              ("familyName", user.family_name)) if v}
    if name:
        name["formatted"] = " ".join(
            x for x in (user.given_name, user.family_name) if x
        )
        doc["name"] = name
    for key, value in (("displayName", user.display_name), ("title", user.title),
                       ("userType", user.user_type), ("locale", user.locale)):
        if value:
            doc[key] = value
    doc["active"] = user.active
    if user.email:
        doc["emails"] = [{"value": user.email, "type": "work", "primary": True}]
    if user.phone_number:
        doc["phoneNumbers"] = [{"value": user.phone_number, "type": "work", "primary": True}]
    doc["groups"] = [
        {"value": gid, "$ref": f"{base}/Groups/{gid}", "display": gname, "type": "direct"}
        for gid, gname in user.groups
    ]
    enterprise: dict[str, Any] = {
        k: v for k, v in (("employeeNumber", user.personnel_number),
                          ("costCenter", user.cost_centre),
                          ("department", user.department)) if v
    }
    if user.manager_id:
        enterprise["manager"] = {"value": user.manager_id}
    if enterprise:
        doc["schemas"].append(ENTERPRISE)
        doc[ENTERPRISE] = enterprise
    unit = {n: user.extras[n] for n in extra_names if user.extras.get(n) is not None}
    if unit:
        doc["schemas"].append(UNIT)
        doc[UNIT] = unit
    doc["meta"] = {
        "resourceType": "User",
        "created": _iso(user.created_at),
        "lastModified": _iso(user.updated_at),
        "location": f"{base}/Users/{user.id}",
        "version": etag(user.version),
    }
    return doc


# -- groups --------------------------------------------------------------------------


def group_from_document(doc: Any, schema: ResourceSchema) -> DirectoryGroup:
    """A desired group from a SCIM Group document; members must be Users."""
    data = normalise(doc, schema)
    members = []
    for element in data.get("members") or []:
        kind = element.get("type")
        if isinstance(kind, str) and kind.lower() == "group":
            raise bad_request("nested groups are not supported")
        value = element.get("value")
        if not isinstance(value, str) or not value:
            raise bad_request("members.value must be a user id")
        members.append((value, ""))
    checked = {k: v for k, v in data.items() if k != "members"}
    checked["schemas"] = [GROUP]
    _validate_with_model(Group, checked)
    display_name = data.get("displayName")
    if not isinstance(display_name, str) or not display_name.strip():
        raise bad_request("displayName is required")
    return DirectoryGroup(
        display_name=display_name,
        external_id=_string(data.get("externalId"), "externalId"),
        members=list(dict.fromkeys(members)),
    )


def group_document(group: DirectoryGroup, base: str) -> dict[str, Any]:
    """The SCIM representation of a group; ``members`` only when they were loaded."""
    doc: dict[str, Any] = {"schemas": [GROUP], "id": group.id}
    if group.external_id:
        doc["externalId"] = group.external_id
    doc["displayName"] = group.display_name
    if group.members is not None:
        doc["members"] = [
            {"value": mid, "$ref": f"{base}/Users/{mid}", "display": display, "type": "User"}
            for mid, display in group.members
        ]
    doc["meta"] = {
        "resourceType": "Group",
        "created": _iso(group.created_at),
        "lastModified": _iso(group.updated_at),
        "location": f"{base}/Groups/{group.id}",
        "version": etag(group.version),
    }
    return doc
