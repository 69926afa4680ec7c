"""Protocol completeness over HTTP (RFC 7644): discovery, every error status,
ETags, filters, sorting, pagination, attribute selection, ``.search``, media type,
the unit extension."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from scim2_models import Context, EnterpriseUser, ResourceType, ServiceProviderConfig, User

from idp.cli import main
from tests.support.scim import (
    ENTERPRISE,
    UNIT_EXT,
    USER,
    Scim,
    body,
    create_token,
    error,
    make_unit,
)


@pytest.fixture
def scim(app: Flask, client: FlaskClient, runner: FlaskCliRunner) -> Scim:
    make_unit(app, "acme", fields=("ship_to", "approver"))
    return Scim(client, create_token(runner, "acme"))


def new_user(scim: Scim, user_name: str, **extra: Any) -> dict[str, Any]:
    doc = {"schemas": [USER], "userName": user_name,
           "emails": [{"value": f"{user_name}@acme.example", "type": "work", "primary": True}]}
    doc.update(extra)
    return body(scim.post("/Users", doc), 201)


# -- discovery -----------------------------------------------------------------------


def test_service_provider_config_says_what_is_supported(scim: Scim) -> None:
    doc = body(scim.get("/ServiceProviderConfig"), 200)
    spc = ServiceProviderConfig.model_validate(doc, scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    assert spc.patch.supported and spc.bulk.supported and spc.filter.supported
    assert spc.bulk.max_operations == 1000 and spc.bulk.max_payload_size == 1048576
    assert spc.filter.max_results == 200
    assert spc.sort.supported and spc.etag.supported and not spc.change_password.supported
    assert spc.authentication_schemes[0].type == "oauthbearertoken"


def test_resource_types_and_unit_extension_schema(scim: Scim) -> None:
    types = body(scim.get("/ResourceTypes"), 200)
    assert [t["id"] for t in types["Resources"]] == ["User", "Group"]
    for doc in types["Resources"]:
        ResourceType.model_validate(doc, scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    user_type = body(scim.get("/ResourceTypes/User"), 200)
    assert [e["schema"] for e in user_type["schemaExtensions"]] == [ENTERPRISE, UNIT_EXT]
    unit = body(scim.get(f"/Schemas/{UNIT_EXT}"), 200)
    assert [a["name"] for a in unit["attributes"]] == ["ship_to", "approver"]
    error(scim.get("/Schemas/urn:nope"), 404)


def test_unit_extension_round_trip(app: Flask, scim: Scim) -> None:
    user = new_user(scim, "ann", **{UNIT_EXT: {"ship_to": "Berlin Dock 4"}})
    assert user[UNIT_EXT] == {"ship_to": "Berlin Dock 4"} and UNIT_EXT in user["schemas"]
    found = body(scim.get(f'/Users?filter={UNIT_EXT}:ship_to sw "berlin"'), 200)
    assert [r["id"] for r in found["Resources"]] == [user["id"]]
    # Attributes the unit does not define are ignored like any unsupported attribute.
    other = body(scim.post("/Users", {"schemas": [USER], "userName": "x@acme.example",
                                      UNIT_EXT: {"not_a_field": "1"}}), 201)
    assert UNIT_EXT not in other
    # Clearing an extension attribute with PATCH.
    doc = body(scim.patch(f"/Users/{user['id']}",
                          {"op": "remove", "path": f"{UNIT_EXT}:ship_to"}), 200)
    assert UNIT_EXT not in doc


def test_responses_are_valid_scim_users(scim: Scim) -> None:
    user = new_user(scim, "ann", name={"givenName": "Ann"}, **{ENTERPRISE: {
        "employeeNumber": "7", "manager": {"value": "m"}}})
    parsed = User[EnterpriseUser].model_validate(user, scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    assert parsed.user_name == "ann" and parsed[EnterpriseUser].employee_number == "7"


# -- errors --------------------------------------------------------------------------


def test_401_without_or_with_bad_token(client: FlaskClient, scim: Scim,
                                       runner: FlaskCliRunner) -> None:  # fmt: skip
    resp = client.get("/scim/v2/Users")
    assert error(resp, 401)["detail"] and resp.headers["WWW-Authenticate"].startswith("Bearer")
    error(Scim(client, "ugscim_wrong").get("/Users"), 401)
    error(Scim(client, scim.token + "x").get("/ServiceProviderConfig"), 401)
    error(client.get("/scim/v2/Users", headers={"Authorization": f"Basic {scim.token}"}), 401)
    listing = runner.invoke(main, ["scim-tokens", "list", "--unit", "acme", "--json"])
    token_id = json.loads(listing.output)["tokens"][0]["id"]
    assert runner.invoke(main, ["scim-tokens", "revoke", token_id]).exit_code == 0
    error(scim.get("/Users"), 401)


def test_404s(scim: Scim) -> None:
    error(scim.get("/Users/0123456789abcdef0123456789abcdef"), 404)
    error(scim.get("/Groups/nope"), 404)
    error(scim.patch("/Users/nope", {"op": "replace", "value": {"active": False}}), 404)
    error(scim.delete("/Users/nope"), 404)
    error(scim.get("/Nothing"), 404)


def test_409_uniqueness(scim: Scim) -> None:
    new_user(scim, "ann")
    error(scim.post("/Users", {"schemas": [USER], "userName": "ANN"}), 409, "uniqueness")
    # Same address under another userName.
    error(scim.post("/Users", {"schemas": [USER], "userName": "ann2",
                               "emails": [{"value": "ann@acme.example"}]}), 409, "uniqueness")
    bob = new_user(scim, "bob")
    error(scim.patch(f"/Users/{bob['id']}", {"op": "replace", "path": "userName",
                                             "value": "Ann"}), 409, "uniqueness")


@pytest.mark.parametrize("doc, scim_type", [
    ({"schemas": [USER]}, "invalidValue"),
    ({"schemas": [USER], "userName": ""}, "invalidValue"),
    ({"schemas": [USER], "userName": 5}, "invalidValue"),
    ({"schemas": [USER], "userName": "a", "emails": [{"value": "not-an-address"}]},
     "invalidValue"),
    ({"schemas": [USER], "userName": "a@b.example", "active": "maybe"}, "invalidValue"),
    ({"schemas": [USER], "userName": "a@b.example", "name": "Ann"}, "invalidValue"),
    ({"schemas": [USER], "userName": "a@b.example", "title": "x" * 201}, "invalidValue"),
    ({"schemas": [USER], "userName": "a@b.example", "name": {"givenName": ["x"]}},
     "invalidValue"),
    ([1, 2], "invalidSyntax"),
])
def test_400_for_bad_users(scim: Scim, doc: Any, scim_type: str) -> None:
    error(scim.post("/Users", doc), 400, scim_type)


def test_400_for_malformed_requests(client: FlaskClient, scim: Scim) -> None:
    resp = client.post("/scim/v2/Users", data="{not json", content_type="application/scim+json",
                       headers=scim.headers())
    error(resp, 400, "invalidSyntax")
    error(scim.get('/Users?filter=userName eq "a" and'), 400, "invalidFilter")
    error(scim.get("/Users?filter=nickName pr"), 400, "invalidFilter")
    error(scim.get("/Users?startIndex=abc"), 400, "invalidValue")
    error(scim.get("/Users?sortBy=password"), 400, "invalidValue")
    error(scim.get("/Users?sortOrder=sideways"), 400, "invalidValue")
    error(scim.get("/Users?attributes=userName&excludedAttributes=emails"), 400, "invalidValue")
    user = new_user(scim, "ann")
    error(scim.patch(f"/Users/{user['id']}", {"op": "replace", "path": "groups",
                                              "value": []}), 400, "mutability")
    error(scim.patch(f"/Users/{user['id']}", {"op": "remove"}), 400, "noTarget")
    error(scim.patch(f"/Users/{user['id']}", {"op": "jump", "path": "x"}), 400, "invalidSyntax")


def test_412_stale_etag_and_if_match(app: Flask, scim: Scim) -> None:
    user = new_user(scim, "ann")
    uid, v1 = user["id"], user["meta"]["version"]
    resp = scim.patch(f"/Users/{uid}", {"op": "replace", "path": "title", "value": "A"},
                      headers={"If-Match": v1})
    v2 = body(resp, 200)["meta"]["version"]
    assert v2 != v1 and resp.headers["ETag"] == v2
    stale = scim.patch(f"/Users/{uid}", {"op": "replace", "path": "title", "value": "B"},
                       headers={"If-Match": v1})
    error(stale, 412)
    assert body(scim.get(f"/Users/{uid}"), 200)["title"] == "A"
    current = body(scim.get(f"/Users/{uid}"), 200)
    error(scim.put(f"/Users/{uid}", current, headers={"If-Match": v1}), 412)
    error(scim.delete(f"/Users/{uid}", headers={"If-Match": 'W/"999"'}), 412)
    body(scim.put(f"/Users/{uid}", current, headers={"If-Match": "*"}), 200)
    # Conditional GET.
    etag = scim.get(f"/Users/{uid}").headers["ETag"]
    assert scim.get(f"/Users/{uid}", headers={"If-None-Match": etag}).status_code == 304
    assert scim.delete(f"/Users/{uid}", headers={"If-Match": etag}).status_code == 204


def test_413_payload_too_large(client: FlaskClient, scim: Scim) -> None:
    big = {"schemas": [USER], "userName": "big@acme.example", "title": "x" * (1024 * 1024)}
    error(scim.post("/Users", big), 413)


def test_media_types(client: FlaskClient, scim: Scim) -> None:
    resp = client.post("/scim/v2/Users", json={"schemas": [USER], "userName": "j@acme.example"},
                       headers={"Authorization": f"Bearer {scim.token}"})
    assert body(resp, 201)["userName"] == "j@acme.example"
    assert resp.headers["Cache-Control"] == "no-store"


# -- queries -------------------------------------------------------------------------


@pytest.fixture
def people(scim: Scim) -> dict[str, str]:
    out = {}
    for name, title, cc in (("anna", "Buyer", "CC1"), ("bert", "Approver", "CC2"),
                            ("carl", "buyer", None), ("dora", None, "CC1")):
        extra: dict[str, Any] = {"title": title} if title else {}
        if cc:
            extra[ENTERPRISE] = {"costCenter": cc}
        out[name] = new_user(scim, name, **extra)["id"]
    body(scim.patch(f"/Users/{out['dora']}", {"op": "replace", "value": {"active": False}}), 200)
    return out


def names(scim: Scim, query: str) -> list[str]:
    found = body(scim.get("/Users?" + query), 200)
    assert found["totalResults"] == len(found["Resources"])
    return [r["userName"] for r in found["Resources"]]


@pytest.mark.parametrize("flt, expected", [
    ('title eq "buyer"', ["anna", "carl"]),
    ('title ne "buyer"', ["bert", "dora"]),
    ('userName co "R"', ["bert", "carl", "dora"]),
    ('userName sw "a"', ["anna"]),
    ('userName ew "A"', ["anna", "dora"]),
    ('userName gt "bert"', ["carl", "dora"]),
    ('userName ge "bert"', ["bert", "carl", "dora"]),
    ('userName lt "bert"', ["anna"]),
    ('userName le "bert"', ["anna", "bert"]),
    ("title pr", ["anna", "bert", "carl"]),
    ("not (title pr)", ["dora"]),
    ("active eq false", ["dora"]),
    ('title eq "buyer" and urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:'
     'costCenter eq "CC1"', ["anna"]),
    ('userName eq "anna" or (title pr and not (title eq "buyer"))', ["anna", "bert"]),
    ('emails[type eq "work" and value ew "@acme.example"]', ["anna", "bert", "carl", "dora"]),
    ('emails.value eq "CARL@acme.example"', ["carl"]),
    ('meta.created gt "2000-01-01T00:00:00Z"', ["anna", "bert", "carl", "dora"]),
    ('meta.lastModified lt "2000-01-01T00:00:00Z"', []),
    ("TITLE EQ \"Approver\"", ["bert"]),
])
def test_filters(scim: Scim, people: dict[str, str], flt: str, expected: list[str]) -> None:
    assert names(scim, f"filter={flt}&sortBy=userName") == expected


def test_sorting_and_pagination(scim: Scim, people: dict[str, str]) -> None:
    assert names(scim, "sortBy=userName&sortOrder=descending") == ["dora", "carl", "bert",
                                                                   "anna"]
    assert names(scim, "sortBy=emails") == ["anna", "bert", "carl", "dora"]
    page = body(scim.get("/Users?sortBy=userName&startIndex=2&count=2"), 200)
    assert page["totalResults"] == 4 and page["startIndex"] == 2 and page["itemsPerPage"] == 2
    assert [r["userName"] for r in page["Resources"]] == ["bert", "carl"]
    count_only = body(scim.get("/Users?count=0"), 200)
    assert count_only["totalResults"] == 4 and count_only["Resources"] == []
    beyond = body(scim.get("/Users?startIndex=99"), 200)
    assert beyond["totalResults"] == 4 and beyond["Resources"] == []
    assert body(scim.get("/Users?startIndex=-5&count=1"), 200)["startIndex"] == 1


def test_attribute_selection(scim: Scim, people: dict[str, str]) -> None:
    doc = body(scim.get(f"/Users/{people['anna']}?attributes=userName,name.givenName"), 200)
    assert set(doc) == {"schemas", "id", "userName"}
    doc = body(scim.get(f"/Users/{people['anna']}?attributes=emails.value,"
                        f"{ENTERPRISE}:costCenter"), 200)
    assert doc["emails"] == [{"value": "anna@acme.example"}]
    assert doc[ENTERPRISE] == {"costCenter": "CC1"} and ENTERPRISE in doc["schemas"]
    doc = body(scim.get(f"/Users/{people['anna']}?excludedAttributes=emails,meta,id"), 200)
    assert "emails" not in doc and "meta" not in doc and doc["id"] == people["anna"]
    listing = body(scim.get('/Users?filter=userName eq "anna"&attributes=USERNAME'), 200)
    assert listing["Resources"] == [{"schemas": [USER], "id": people["anna"],
                                     "userName": "anna"}]


def test_search_endpoints(scim: Scim, people: dict[str, str]) -> None:
    request = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
               "filter": 'title eq "buyer"', "attributes": ["userName"],
               "sortBy": "userName", "startIndex": 1, "count": 10}
    found = body(scim.post("/Users/.search", request), 200)
    assert [r["userName"] for r in found["Resources"]] == ["anna", "carl"]
    assert set(found["Resources"][0]) == {"schemas", "id", "userName"}
    group = body(scim.post("/Groups", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                                       "displayName": "Buyers",
                                       "members": [{"value": people["anna"]}]}), 201)
    found = body(scim.post("/Groups/.search", {"filter": "displayName sw \"buy\""}), 200)
    assert [r["id"] for r in found["Resources"]] == [group["id"]]
    everything = body(scim.post("/.search", {"filter": 'displayName pr or userName eq "bert"'}),
                      200)
    assert everything["totalResults"] == 2
    assert [r["meta"]["resourceType"] for r in everything["Resources"]] == ["User", "Group"]
    error(scim.post("/Users/.search", {"schemas": ["urn:nope"]}), 400, "invalidSyntax")
    by_group = body(scim.get('/Users?filter=groups[display eq "buyers"]'), 200)
    assert [r["id"] for r in by_group["Resources"]] == [people["anna"]]


# -- methods an endpoint does not have: 405, SCIM error body, Allow ------------------


@pytest.mark.parametrize("path", [
    "/ServiceProviderConfig", "/ResourceTypes", "/ResourceTypes/User", "/Schemas",
    f"/Schemas/{USER}", "/Schemas/urn:nope",
])
@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_discovery_endpoints_are_read_only(scim: Scim, path: str, method: str) -> None:
    resp = scim.call(method, path, {"schemas": [USER], "userName": "x"})
    doc = error(resp, 405)
    assert doc["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert doc["status"] == "405"
    assert resp.headers["Allow"] == "GET, HEAD"
    assert resp.mimetype == "application/scim+json"


@pytest.mark.parametrize(("method", "path", "allow"), [
    ("PUT", "/Users", "GET, POST, HEAD"),
    ("DELETE", "/Groups", "GET, POST, HEAD"),
    ("POST", "/Users/0123456789abcdef0123456789abcdef", "GET, PUT, PATCH, DELETE, HEAD"),
    ("GET", "/Bulk", "POST"),
])
def test_other_wrong_methods_answer_405_with_allow(
    scim: Scim, method: str, path: str, allow: str
) -> None:
    resp = scim.call(method, path, {"schemas": [USER], "userName": "x"})
    error(resp, 405)
    assert resp.headers["Allow"] == allow


def test_wrong_method_without_a_token_is_still_401(client: FlaskClient, scim: Scim) -> None:
    assert client.delete("/scim/v2/Schemas").status_code == 401


# -- locale and preferredLanguage: any BCP 47 tag up to 35 characters ----------------

LONG_TAG = "sr-Latn-RS-u-nu-latn-x-private1234"  # 34 characters


@pytest.mark.parametrize("tag", ["de-CH", "zh-Hant-TW", "es-419", LONG_TAG,
                                 "en-GB-oxendict-x-abcdefgh-12345678"])
def test_locale_takes_any_bcp47_tag_up_to_35_characters(
    app: Flask, scim: Scim, tag: str
) -> None:
    user = new_user(scim, "lou", locale=tag, preferredLanguage=tag)
    assert user["locale"] == tag
    assert body(scim.get(f"/Users/{user['id']}"), 200)["locale"] == tag
    doc = body(scim.patch(f"/Users/{user['id']}",
                          {"op": "replace", "path": "locale", "value": "de-AT"}), 200)
    assert doc["locale"] == "de-AT"


def test_locale_longer_than_35_characters_is_refused(scim: Scim) -> None:
    error(scim.post("/Users", {"schemas": [USER], "userName": "lou@acme.example",
                               "locale": "en-" + "-".join(["abcdefgh"] * 4)}),
          400, "invalidValue")


def test_the_ui_language_is_only_the_supported_prefix_of_a_locale() -> None:
    from idp.i18n import ui_language

    assert ui_language("de-CH") == "de"
    assert ui_language("DE_at") == "de"
    assert ui_language("sr-Latn-RS") == "en"
    assert ui_language(LONG_TAG) == "en"
    assert ui_language(None) == "en"
    assert ui_language("deu") == "en"  # not a prefix match on characters
