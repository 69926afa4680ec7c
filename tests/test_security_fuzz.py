"""SECURITY.md, Failure: "No stack trace or internal detail in any response" — every
route that takes a POST (or PUT/PATCH/DELETE) is sent junk bodies of every shape, with
junk in its URL variables too, on the real app; none may answer 5xx or leak detail."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from werkzeug.routing import Rule

from tests.support import oidc
from tests.support.login import csrf_token
from tests.support.scim import GROUP, USER, Scim, body, create_token, make_unit

LEAKS = re.compile(
    r"Traceback|File \"/|sqlalchemy|psycopg|redis\.exceptions|werkzeug\.exceptions|"
    r"Exception:|Error\(|line [0-9]+, in ",
)

JUNK_VALUES = ["", "x" * 5000, "\x00\x01", "%ff%fe", "{", "[]", "../../etc/passwd",
               "' OR 1=1 --", "\u202e\ufeff", "-1", "99999999999999999999"]


HUGE_INTEGERS = {"startIndex": "9223372036854775809", "count": "-9223372036854775809",
                 "page": "9223372036854775809", "max_age": "9223372036854775809"}


def _bodies(csrf: str) -> Iterator[tuple[str, bytes | dict[str, str]]]:
    """(content type, body) pairs: forms (with a junk and with the real CSRF token),
    JSON of the wrong shapes, invalid UTF-8."""
    yield "application/x-www-form-urlencoded", {}
    for value in JUNK_VALUES:
        form = {k: value for k in ("csrf_token", "email", "code", "grant_type", "token",
                               "client_id", "redirect_uri", "SAMLRequest", "SAMLResponse",
                               "RelayState", "id_token_hint", "confirm", "decision",
                               "password", "unit", "given_name", "state")}
        yield "application/x-www-form-urlencoded", form
        yield "application/x-www-form-urlencoded", {**form, "csrf_token": csrf}
    for doc in ("null", "1", '"s"', "[1,2]", '{"schemas": 5}', '{"Operations": "x"}',
                '{"userName": {"a": 1}, "emails": "x", "active": "maybe"}', "{" * 2000,
                "[" * 1000 + "]" * 1000, '{"a":' * 1000 + "1" + "}" * 1000,
                '{"startIndex": 1e400, "count": 9223372036854775809}',
                '{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], '
                '"userName": "a\\u0000b@acme.example", "externalId": "\\u0000", '
                '"displayName": "\\u0000"}',
                '{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], '
                '"displayName": "G\\u0000", "members": [{"value": "\\u0000"}]}',
                '{"Operations": [{"op": "replace", "value": {"userName": "\\u0000"}}]}'):
        yield "application/scim+json", doc.encode()
        yield "application/json", doc.encode()
    yield "application/x-www-form-urlencoded", b"email=%ff%fe&code=\xff\xfe"
    yield "application/scim+json", b"\xff\xfe\x00garbage"
    yield "multipart/form-data; boundary=zz", b"--zz\r\nbroken"
    yield "text/xml", b"<!DOCTYPE x [<!ENTITY a 'b'>]><x>&a;</x>"


def _urls(rule: Rule, real: dict[str, list[str]], junk: tuple[str, ...]) -> list[str]:
    """The rule's URL with every variable replaced by real ids (so the handlers behind
    it are reached, not only their 404) and by each junk value."""
    out = [rule.rule]
    for name in rule.arguments:
        pattern = r"<(?:[^<>]+:)?" + re.escape(name) + r">"
        values = ["Users", "Groups"] if name == "kind" else [*real.get(name, []), *junk]
        out = [re.sub(pattern, v, url) for url in out for v in values]
    return sorted(set(out))


@dataclass
class Stage:
    """Real ids and credentials so junk reaches the code behind the first checks."""

    ids: dict[str, list[str]]
    csrf: str
    auth: dict[str, dict[str, str]]


@pytest.fixture
def stage(app: Flask, client: FlaskClient, runner: FlaskCliRunner) -> Stage:
    oidc.ensure_login_endpoint(app)
    rp = oidc.register(app)
    ix = oidc.interaction_id(client.get("/authorize", query_string=oidc.auth_params(rp)))
    csrf = csrf_token(client.get(f"/interaction/{ix}").get_data(as_text=True))
    make_unit(app, "acme")
    scim = Scim(client, create_token(runner, "acme"))
    user = body(scim.post("/Users", {"schemas": [USER], "userName": "ann@acme.example"}), 201)
    group = body(scim.post("/Groups", {"schemas": [GROUP], "displayName": "Buyers"}), 201)
    return Stage(
        ids={"interaction_id": [ix], "resource_id": [user["id"], group["id"]]},
        csrf=csrf,
        auth={"none": {}, "junk bearer": {"Authorization": "Bearer " + "x" * 40},
              "scim token": {"Authorization": f"Bearer {scim.token}"},
              "client": rp.basic()},
    )


def _targets(app: Flask) -> list[tuple[Rule, str]]:
    methods = {"POST", "PUT", "PATCH", "DELETE"}
    return sorted(((rule, m) for rule in app.url_map.iter_rules()
                   for m in sorted((rule.methods or set()) & methods)
                   if not rule.rule.startswith("/static")),
                  key=lambda t: (t[0].rule, t[1]))  # fmt: skip


class Findings:
    """Every 5xx or leak, collected so one run reports all of them."""

    def __init__(self) -> None:
        self.problems: dict[str, str] = {}

    def check(self, status: int, body: str, where: str) -> None:
        leak = LEAKS.search(body.split("</header>", 1)[-1])
        if status >= 500 or leak is not None:
            self.problems.setdefault(where, f"{status} {leak.group(0) if leak else ''}")

    def assert_none(self) -> None:
        assert not self.problems, "\n".join(f"{k}: {v}" for k, v in self.problems.items())


def test_every_state_changing_route_is_fuzzed(app: Flask) -> None:
    """The fuzz below really reaches the blueprints (so it cannot pass vacuously)."""
    rules = {rule.rule for rule, _ in _targets(app)}
    for expected in ("/token", "/introspect", "/revoke", "/logout", "/saml/sso", "/saml/slo"):
        assert expected in rules, sorted(rules)
    assert any(r.startswith("/scim/v2/") for r in rules), sorted(rules)
    assert any(r.startswith("/interaction/") for r in rules), sorted(rules)
    assert any(r.startswith("/federation") for r in rules), sorted(rules)


@pytest.mark.parametrize("auth", ["none", "junk bearer", "scim token", "client"])
def test_junk_bodies_never_give_a_server_error(app: Flask, client: FlaskClient, stage: Stage,
                                               auth: str) -> None:  # fmt: skip
    """Every POST/PUT/PATCH/DELETE route, real and junk URL variables, junk bodies,
    with no, junk and real credentials: 4xx (or a 2xx/3xx page), never 5xx, never a
    stack trace or a library's name."""
    headers = {**stage.auth[auth], "Accept": "text/html,application/json"}
    seen: set[int] = set()
    findings = Findings()
    for rule, method in _targets(app):
        for url in _urls(rule, stage.ids, ("x", "0", "%ff", "a" * 300)):
            for ctype, data in _bodies(stage.csrf):
                if isinstance(data, dict):
                    resp = client.open(url, method=method, data=data, headers=headers)
                else:
                    resp = client.open(url, method=method, data=data,
                                       content_type=ctype, headers=headers)  # fmt: skip
                seen.add(resp.status_code)
                findings.check(resp.status_code, resp.get_data(as_text=True),
                               f"{method} {rule.rule} {ctype}")
    findings.assert_none()
    # the junk got past authentication somewhere: a 400 of a real handler
    assert 400 in seen, seen


def test_junk_query_strings_on_get_routes_never_give_a_server_error(
    client: FlaskClient, app: Flask, stage: Stage
) -> None:
    """The GET side of the same routes (authorize, SAML redirect binding, SCIM
    searches, login pages) with junk query parameters."""
    params = {k: v for k, v in zip(
        ("client_id", "redirect_uri", "scope", "response_type", "SAMLRequest",
         "SAMLResponse", "filter", "startIndex", "count", "id_token_hint", "attributes",
         "sortBy", "state", "login_hint"), JUNK_VALUES * 2, strict=False)}
    findings = Findings()
    for rule in app.url_map.iter_rules():
        if "GET" not in (rule.methods or set()) or rule.rule.startswith("/static"):
            continue
        for url in _urls(rule, stage.ids, ("x", "%ff")):
            for query in (params, {k: "\x00" for k in params}, {}, HUGE_INTEGERS):
                resp = client.get(url, query_string=query, headers=stage.auth["scim token"])
                findings.check(resp.status_code, resp.get_data(as_text=True), f"GET {rule.rule}")
    findings.assert_none()


def test_json_error_bodies_are_json(client: FlaskClient) -> None:
    """API endpoints answer junk in their own error shape, not an HTML trace."""
    resp = client.post("/token", data={"grant_type": "\x00"})
    assert resp.status_code == 400 and json.loads(resp.get_data())["error"]


def test_nul_characters_are_refused_on_every_backend(client: FlaskClient, stage: Stage) -> None:
    """Found by the fuzz on PostgreSQL (which cannot store NUL in text): a NUL in a
    client_id or in a SCIM document is a 4xx in the protocol's own shape."""
    resp = client.get("/authorize", query_string={"client_id": "a\x00b", "response_type": "code"},
                      headers={"Accept": "text/html"})
    assert resp.status_code == 400 and "Location" not in resp.headers
    scim = stage.auth["scim token"]
    for kind, doc in (("Groups", {"schemas": [GROUP], "displayName": "G\x00"}),
                      ("Groups", {"schemas": [GROUP], "displayName": "G",
                                  "members": [{"value": "\x00"}]}),
                      ("Users", {"schemas": [USER], "userName": "a\x00b@acme.example"})):
        resp = client.post(f"/scim/v2/{kind}", data=json.dumps(doc),
                           content_type="application/scim+json", headers=scim)
        assert resp.status_code == 400, resp.get_data(as_text=True)
        assert resp.get_json()["scimType"] == "invalidValue"
