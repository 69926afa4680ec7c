"""PATCH operations (RFC 7644 §3.5.2) on resource documents, with the shapes Okta
and Entra send. No database: :func:`scim.patch.apply` works on JSON."""

from __future__ import annotations

from typing import Any

import pytest

from scim.errors import ScimError
from scim.patch import Operation, apply, parse_operations
from scim.schema import ENTERPRISE, GROUP_SCHEMA, PATCH_OP, user_schema

SCHEMA = user_schema([])


def user() -> dict[str, Any]:
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "id": "u1",
        "userName": "ann@acme.example",
        "name": {"givenName": "Ann", "familyName": "Example", "formatted": "Ann Example"},
        "active": True,
        "emails": [{"value": "ann@acme.example", "type": "work", "primary": True}],
        "groups": [{"value": "g1", "display": "Buyers"}],
        ENTERPRISE: {"employeeNumber": "7"},
        "meta": {"resourceType": "User", "version": 'W/"3"'},
    }


def ops(*items: dict[str, Any]) -> list[Operation]:
    return parse_operations({"schemas": [PATCH_OP], "Operations": list(items)})


def test_parse_accepts_capitalised_ops_and_keys() -> None:
    parsed = parse_operations({"schemas": [PATCH_OP], "operations": [
        {"OP": "Replace", "Path": "title", "Value": "x"}]})
    assert parsed == [Operation("replace", "title", "x")]


@pytest.mark.parametrize("bad_body", [
    [], "x", {"schemas": [PATCH_OP]}, {"schemas": [PATCH_OP], "Operations": []},
    {"schemas": ["urn:wrong"], "Operations": [{"op": "add", "value": {}}]},
    {"schemas": [PATCH_OP], "Operations": [{"op": "move", "path": "a"}]},
    {"schemas": [PATCH_OP], "Operations": ["add"]},
    {"schemas": [PATCH_OP], "Operations": [{"op": "add", "path": 5, "value": 1}]},
])
def test_malformed_patch_bodies(bad_body: Any) -> None:
    with pytest.raises(ScimError) as err:
        parse_operations(bad_body)
    assert err.value.status == 400 and err.value.scim_type in ("invalidSyntax", "invalidPath")


def test_replace_without_path_string_booleans() -> None:
    out = apply(user(), ops({"op": "Replace", "value": {"active": "False"}}), SCHEMA)
    assert out["active"] is False
    out = apply(user(), ops({"op": "replace", "path": "ACTIVE", "value": "true"}), SCHEMA)
    assert out["active"] is True


def test_input_document_is_not_modified() -> None:
    doc = user()
    apply(doc, ops({"op": "remove", "path": "name.givenName"}), SCHEMA)
    assert doc == user()


def test_value_path_replace_and_create() -> None:
    out = apply(user(), ops({"op": "Replace", "path": 'emails[type eq "work"].value',
                             "value": "new@acme.example"}), SCHEMA)
    assert out["emails"] == [{"value": "new@acme.example", "type": "work", "primary": True}]
    doc = user()
    del doc["emails"]
    out = apply(doc, ops({"op": "Add", "path": 'emails[type eq "work"].value',
                          "value": "w@acme.example"}), SCHEMA)
    assert out["emails"] == [{"type": "work", "value": "w@acme.example"}]


def test_dotted_and_urn_keys_in_a_pathless_value() -> None:
    out = apply(user(), ops({"op": "replace", "value": {
        "name.givenName": "Kkom", f"{ENTERPRISE}:employeeNumber": "Aklq",
        ENTERPRISE: {"department": "IT"}, "nickName": "ignored"}}), SCHEMA)
    assert out["name"]["givenName"] == "Kkom" and out["name"]["familyName"] == "Example"
    assert out[ENTERPRISE] == {"employeeNumber": "Aklq", "department": "IT"}
    assert "nickName" not in out


def test_manager_bare_id_and_remove() -> None:
    out = apply(user(), ops({"op": "Add", "path": f"{ENTERPRISE}:manager", "value": "m1"}),
                SCHEMA)
    assert out[ENTERPRISE]["manager"] == {"value": "m1"}
    out = apply(out, ops({"op": "Remove", "path": f"{ENTERPRISE}:manager"}), SCHEMA)
    assert "manager" not in out[ENTERPRISE]


def test_complex_replace_merges_sub_attributes() -> None:
    out = apply(user(), ops({"op": "replace", "path": "name", "value": {"familyName": "X"}}),
                SCHEMA)
    assert out["name"]["givenName"] == "Ann" and out["name"]["familyName"] == "X"


def test_read_only_attributes() -> None:
    for op in ({"op": "replace", "path": "id", "value": "u2"},
               {"op": "add", "path": "groups", "value": [{"value": "g2"}]},
               {"op": "replace", "value": {"id": "other"}},
               {"op": "replace", "path": "meta.version", "value": "1"}):
        with pytest.raises(ScimError) as err:
            apply(user(), ops(op), SCHEMA)
        assert err.value.scim_type == "mutability"
    # Echoing the current id (Okta's group rename) is not a change.
    assert apply(user(), ops({"op": "replace", "value": {"id": "u1"}}), SCHEMA)["id"] == "u1"


def test_remove_errors() -> None:
    with pytest.raises(ScimError) as err:
        apply(user(), ops({"op": "remove"}), SCHEMA)
    assert err.value.scim_type == "noTarget"
    with pytest.raises(ScimError) as err:
        apply(user(), ops({"op": "remove", "path": "userName"}), SCHEMA)
    assert err.value.scim_type == "mutability"
    with pytest.raises(ScimError) as err:
        apply(user(), ops({"op": "replace", "path": "emails[type eq ]", "value": "x"}), SCHEMA)
    assert err.value.scim_type == "invalidFilter"
    with pytest.raises(ScimError) as err:
        apply(user(), ops({"op": "replace", "path": "title[value eq 1]", "value": "x"}), SCHEMA)
    assert err.value.scim_type == "invalidPath"


def group() -> dict[str, Any]:
    return {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "id": "g1",
            "displayName": "Buyers", "members": [{"value": "a"}, {"value": "b"}]}


def test_member_operations() -> None:
    out = apply(group(), ops({"op": "add", "path": "members",
                              "value": [{"value": "b"}, {"value": "c"}]}), GROUP_SCHEMA)
    assert [m["value"] for m in out["members"]] == ["a", "b", "c"]
    out = apply(group(), ops({"op": "remove", "path": 'members[value eq "a"]'}), GROUP_SCHEMA)
    assert [m["value"] for m in out["members"]] == ["b"]
    out = apply(group(), ops({"op": "Remove", "path": "members",
                              "value": [{"$ref": None, "value": "b"}]}), GROUP_SCHEMA)
    assert [m["value"] for m in out["members"]] == ["a"]
    out = apply(group(), ops({"op": "replace", "path": "members", "value": [{"value": "z"}]}),
                GROUP_SCHEMA)
    assert out["members"] == [{"value": "z"}]
    out = apply(group(), ops({"op": "remove", "path": "members"}), GROUP_SCHEMA)
    assert "members" not in out
