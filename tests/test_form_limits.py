"""Every form body is capped at 100 parameters before anything parses it
(``idp.web.form_limits``; issue 10, finding 10 and its follow-up for the other form
endpoints): a clear 400 (413 for too many multipart parts), never the CPU of parsing
100,000 parameters, never a 500; ordinary forms keep working."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from idp.web.form_limits import MAX_FORM_PARAMS

FORM = "application/x-www-form-urlencoded"


def many(n: int) -> str:
    return "&".join(f"p{i}=1" for i in range(n))


@pytest.mark.parametrize("path", ["/authorize", "/logout", "/userinfo", "/account/profile",
                                  "/token", "/saml/sso"])
def test_too_many_form_parameters_are_refused_everywhere(
    client: FlaskClient, path: str
) -> None:
    resp = client.post(path, data=many(100_000), content_type=FORM)
    assert resp.status_code == 400, (path, resp.status_code)
    assert "form parameters" in resp.get_data(as_text=True)


def test_the_refusal_speaks_the_clients_language(client: FlaskClient) -> None:
    page = client.post("/authorize", data=many(MAX_FORM_PARAMS + 1), content_type=FORM)
    assert page.status_code == 400 and page.mimetype == "text/html"
    api = client.post("/token", data=many(MAX_FORM_PARAMS + 1), content_type=FORM)
    assert api.status_code == 400 and api.get_json()["error"] == "invalid_request"


def test_just_under_the_cap_is_parsed_as_usual(app: Flask, client: FlaskClient) -> None:
    """99 ``&`` (100 parameters) pass the cap: the answer is the endpoint's own."""
    resp = client.post("/token", data=many(MAX_FORM_PARAMS), content_type=FORM)
    assert resp.status_code in (400, 401)
    assert "form parameters" not in resp.get_data(as_text=True)


def test_too_many_multipart_parts_are_refused(client: FlaskClient) -> None:
    data = {f"p{i}": "1" for i in range(MAX_FORM_PARAMS + 5)}
    resp = client.post("/authorize", data=data, content_type="multipart/form-data")
    assert resp.status_code in (400, 413)


@pytest.mark.parametrize("path", ["/authorize", "/logout", "/userinfo", "/account/profile",
                                  "/token", "/saml/sso"])
def test_the_capped_paths_are_real_endpoints(client: FlaskClient, path: str) -> None:
    """(So that the test above is not vacuous: each path answers a small POST itself.)"""
    assert client.post(path, data="a=1", content_type=FORM).status_code != 404
