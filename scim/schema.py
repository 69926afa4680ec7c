"""Exactly the attributes Unitgate's SCIM service supports (RFC 7643 §2, §4, §7).

One table drives everything: the ``/Schemas`` documents, case-insensitive attribute
resolution in filters and PATCH paths, type coercion, mutability checks and which
domain field a filter compiles to. An attribute absent here is not stored: in a
request it is accepted and ignored (HR systems send more than we keep).

``emails`` and ``phoneNumbers`` are *virtual* multi-valued attributes: Unitgate keeps
one work address and one phone number, shown as a single ``work``/``primary``
element; their ``type`` and ``primary`` sub-attributes are constants, so a filter
such as ``emails[type eq "work"].value eq "a@b.c"`` compiles to one column test.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
UNIT = "urn:unitgate:params:scim:schemas:extension:unit:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
SEARCH_REQUEST = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
BULK_REQUEST = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
BULK_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:BulkResponse"
SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Schema"
RESOURCE_TYPE = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
SPC = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"


@dataclass(frozen=True)
class Attr:
    """One attribute (RFC 7643 §7 characteristics) and how it maps to the domain.

    ``field``: the predicate field a filter on it compiles to. ``constant``: the fixed
    value of a virtual sub-attribute. ``relation``: a multi-valued reference attribute
    searched through a related record (a user's ``groups``, a group's ``members``).
    """

    name: str
    type: str = "string"
    multi: bool = False
    required: bool = False
    case_exact: bool = False
    mutability: str = "readWrite"
    returned: str = "default"
    uniqueness: str = "none"
    description: str = ""
    sub: tuple[Attr, ...] = ()
    field: str | None = None
    constant: Any = None
    relation: str | None = None
    reference_types: tuple[str, ...] = ()
    canonical: tuple[str, ...] = ()

    def child(self, name: str) -> Attr | None:
        """The sub-attribute called ``name`` (case-insensitive)."""
        lowered = name.lower()
        return next((a for a in self.sub if a.name.lower() == lowered), None)

    @property
    def writable(self) -> bool:
        return self.mutability in ("readWrite", "writeOnly", "immutable")


def _meta() -> Attr:
    return Attr(
        "meta",
        "complex",
        mutability="readOnly",
        description="Resource metadata.",
        sub=(
            Attr("resourceType", mutability="readOnly", case_exact=True),
            Attr("created", "dateTime", mutability="readOnly", field="created_at"),
            Attr("lastModified", "dateTime", mutability="readOnly", field="updated_at"),
            Attr("location", "reference", mutability="readOnly", case_exact=True,
                 reference_types=("uri",)),
            Attr("version", mutability="readOnly", case_exact=True),
        ),
    )


ID = Attr("id", mutability="readOnly", returned="always", uniqueness="server",
          case_exact=True, field="id", description="Unitgate's identifier.")
EXTERNAL_ID = Attr("externalId", case_exact=True, field="external_id",
                   description="The HR system's identifier.")

USER_ATTRS: tuple[Attr, ...] = (
    ID,
    EXTERNAL_ID,
    Attr("userName", required=True, uniqueness="server", field="user_name",
         description="Unique per business unit; compared case-insensitively."),
    Attr("name", "complex", description="The person's name.", sub=(
        Attr("formatted", mutability="readOnly",
             description="givenName and familyName, computed."),
        Attr("givenName", field="given_name"),
        Attr("familyName", field="family_name"),
    )),
    Attr("displayName", field="display_name"),
    Attr("title", field="title"),
    Attr("userType", field="user_type"),
    Attr("locale", field="locale", description="Language tag such as de-DE."),
    Attr("active", "boolean", field="active",
         description="false blocks sign-in, ends sessions and revokes tokens."),
    Attr("emails", "complex", multi=True,
         description="One work address: the address the employee signs in with.",
         sub=(
             Attr("value", field="email"),
             Attr("type", constant="work", canonical=("work",)),
             Attr("primary", "boolean", constant=True),
         )),
    Attr("phoneNumbers", "complex", multi=True, description="One work phone number.", sub=(
        Attr("value", field="phone_number"),
        Attr("type", constant="work", canonical=("work", "mobile")),
        Attr("primary", "boolean", constant=True),
    )),
    Attr("groups", "complex", multi=True, mutability="readOnly", relation="groups",
         description="The unit groups the user belongs to (change them on /Groups).",
         sub=(
             Attr("value", mutability="readOnly", case_exact=True, field="id"),
             Attr("$ref", "reference", mutability="readOnly", reference_types=("Group",)),
             Attr("display", mutability="readOnly", field="display_name"),
             Attr("type", mutability="readOnly", constant="direct", canonical=("direct",)),
         )),
    _meta(),
)

ENTERPRISE_ATTRS: tuple[Attr, ...] = (
    Attr("employeeNumber", field="personnel_number", description="Personnel number."),
    Attr("costCenter", field="cost_centre", description="Cost centre."),
    Attr("department", field="department"),
    Attr("manager", "complex", description="The user's manager.", sub=(
        Attr("value", case_exact=True, field="manager_id",
             description="The manager's id (any identifier the HR system uses)."),
        Attr("$ref", "reference", mutability="readOnly", reference_types=("User",)),
        Attr("displayName", mutability="readOnly"),
    )),
)

GROUP_ATTRS: tuple[Attr, ...] = (
    ID,
    EXTERNAL_ID,
    Attr("displayName", required=True, field="display_name"),
    Attr("members", "complex", multi=True, relation="members",
         description="Users of the same business unit (nested groups are not supported).",
         sub=(
             Attr("value", mutability="immutable", case_exact=True, field="id"),
             Attr("$ref", "reference", mutability="immutable", reference_types=("User",)),
             Attr("display", mutability="readOnly"),
             Attr("type", mutability="immutable", constant="User", canonical=("User",)),
         )),
    _meta(),
)


def unit_attrs(names: list[str]) -> tuple[Attr, ...]:
    """The unit-specific extension: one string attribute per unit profile field."""
    return tuple(Attr(n, field=f"extra.{n}", description="Business-unit field.") for n in names)


@dataclass(frozen=True)
class ResourceSchema:
    """A resource type's schemas: its core URN and its extensions (URN -> attributes)."""

    name: str
    core: str
    attrs: tuple[Attr, ...]
    extensions: dict[str, tuple[Attr, ...]]

    @cached_property
    def _index(self) -> dict[tuple[str | None, str], tuple[str, Attr]]:
        index: dict[tuple[str | None, str], tuple[str, Attr]] = {}
        for space_urn, attrs in [*reversed(self.extensions.items()), (self.core, self.attrs)]:
            for attr in attrs:
                index[(space_urn.lower(), attr.name.lower())] = (space_urn, attr)
                index[(None, attr.name.lower())] = (space_urn, attr)
        return index

    @cached_property
    def _urns(self) -> dict[str, str]:
        return {u.lower(): u for u in [self.core, *self.extensions]}

    def find(self, urn: str | None, name: str) -> tuple[str, Attr] | None:
        """Resolve an attribute name (case-insensitive) to (schema URN, attribute).

        Without ``urn`` the core schema wins over the extensions.
        """
        return self._index.get((urn.lower() if urn is not None else None, name.lower()))

    def urn(self, text: str) -> str | None:
        """The canonical spelling of a schema URN of this resource, or None."""
        return self._urns.get(text.lower())


def user_schema(extra_names: list[str]) -> ResourceSchema:
    """The User resource schema of a unit with these extra profile fields."""
    return _user_schema(tuple(extra_names))


@lru_cache(maxsize=1024)
def _user_schema(extra_names: tuple[str, ...]) -> ResourceSchema:
    extensions = {ENTERPRISE: ENTERPRISE_ATTRS}
    if extra_names:
        extensions[UNIT] = unit_attrs(list(extra_names))
    return ResourceSchema("User", USER, USER_ATTRS, extensions)


GROUP_SCHEMA = ResourceSchema("Group", GROUP, GROUP_ATTRS, {})


# -- discovery documents (RFC 7643 §5-7) ---------------------------------------------


def attribute_document(attr: Attr) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": attr.name,
        "type": attr.type,
        "multiValued": attr.multi,
        "description": attr.description or attr.name,
        "required": attr.required,
        "caseExact": attr.case_exact,
        "mutability": attr.mutability,
        "returned": attr.returned,
        "uniqueness": attr.uniqueness,
    }
    if attr.canonical:
        doc["canonicalValues"] = list(attr.canonical)
    if attr.reference_types:
        doc["referenceTypes"] = list(attr.reference_types)
    if attr.sub:
        doc["subAttributes"] = [attribute_document(a) for a in attr.sub]
    return doc


def schema_document(urn: str, name: str, attrs: tuple[Attr, ...], base: str) -> dict[str, Any]:
    return {
        "schemas": [SCHEMA],
        "id": urn,
        "name": name,
        "description": f"{name} as Unitgate stores it",
        "attributes": [attribute_document(a) for a in attrs],
        "meta": {"resourceType": "Schema", "location": f"{base}/Schemas/{urn}"},
    }


def schema_documents(extra_names: list[str], base: str) -> list[dict[str, Any]]:
    """Every schema this unit's token can use, with only the supported attributes."""
    docs = [
        schema_document(USER, "User", USER_ATTRS, base),
        schema_document(ENTERPRISE, "EnterpriseUser", ENTERPRISE_ATTRS, base),
        schema_document(GROUP, "Group", GROUP_ATTRS, base),
    ]
    if extra_names:
        docs.append(schema_document(UNIT, "UnitUser", unit_attrs(extra_names), base))
    return docs


def resource_type_documents(extra_names: list[str], base: str) -> list[dict[str, Any]]:
    user_extensions = [{"schema": ENTERPRISE, "required": False}]
    if extra_names:
        user_extensions.append({"schema": UNIT, "required": False})
    return [
        {
            "schemas": [RESOURCE_TYPE],
            "id": "User",
            "name": "User",
            "endpoint": "/Users",
            "description": "An employee of the business unit",
            "schema": USER,
            "schemaExtensions": user_extensions,
            "meta": {"resourceType": "ResourceType", "location": f"{base}/ResourceTypes/User"},
        },
        {
            "schemas": [RESOURCE_TYPE],
            "id": "Group",
            "name": "Group",
            "endpoint": "/Groups",
            "description": "A group of the business unit's employees",
            "schema": GROUP,
            "schemaExtensions": [],
            "meta": {"resourceType": "ResourceType", "location": f"{base}/ResourceTypes/Group"},
        },
    ]
