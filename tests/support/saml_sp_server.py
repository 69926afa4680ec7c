"""A merchant's web application for browser tests: the python3-saml
:class:`~tests.support.saml_sp.ServiceProvider` behind real HTTP (werkzeug in a
thread). ``/login`` shows a page whose button posts an AuthnRequest (HTTP-POST
binding) to the IdP, ``/saml/acs`` validates the posted Response in strict mode,
``/logout`` starts single logout (HTTP-Redirect) and ``/saml/sls`` takes the answer.
Each page states its result in ``<p id="result">``."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from html import escape
from typing import Any

from flask import Flask, redirect, request
from werkzeug.serving import make_server

from tests.support.processes import wait_for_http
from tests.support.saml_sp import ServiceProvider


def _request_data() -> dict[str, Any]:
    return {
        "https": "off",
        "http_host": request.host,
        "script_name": request.path,
        "get_data": request.args.to_dict(),
        "post_data": request.form.to_dict(),
        "query_string": request.query_string.decode(),
        "validate_signature_from_qs": True,
    }


def merchant_app(sp: ServiceProvider, idp_sso_url: str) -> Flask:
    """The merchant's Flask app around ``sp``."""
    from onelogin.saml2.auth import OneLogin_Saml2_Auth

    app = Flask("merchant")
    state: dict[str, Any] = {}

    def page(result: str, body: str = "") -> str:
        return f"<!doctype html><title>Merchant</title><p id='result'>{escape(result)}</p>{body}"

    @app.get("/login")
    def login() -> str:
        form, request_id = sp.login_post()
        state["request_id"] = request_id
        fields = "".join(
            f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">' for k, v in form.items()
        )
        return page(
            "ready",
            f'<form method="post" action="{escape(idp_sso_url)}">{fields}'
            '<button type="submit">Sign in with Unitgate</button></form>',
        )

    @app.post("/saml/acs")
    def acs() -> str:
        auth = OneLogin_Saml2_Auth(_request_data(), old_settings=sp.settings())
        auth.process_response(request_id=state.get("request_id"))
        if auth.get_errors() or not auth.is_authenticated():
            return page(f"error {auth.get_errors()} {auth.get_last_error_reason()}")
        state.update(
            name_id=auth.get_nameid(),
            name_id_format=auth.get_nameid_format(),
            session_index=auth.get_session_index(),
        )
        mail = auth.get_friendlyname_attributes().get("mail", [""])[0]
        return page(f"signed in {mail}")

    @app.get("/logout")
    def logout() -> Any:
        auth = OneLogin_Saml2_Auth(_request_data(), old_settings=sp.settings())
        url = auth.logout(
            return_to="/goodbye",
            name_id=state["name_id"],
            session_index=state["session_index"],
            name_id_format=state["name_id_format"],
            spnq=sp.entity_id,
        )
        state["logout_id"] = auth.get_last_request_id()
        return redirect(url)

    @app.get("/saml/sls")
    def sls() -> str:
        auth = OneLogin_Saml2_Auth(_request_data(), old_settings=sp.settings())
        auth.process_slo(request_id=state.get("logout_id"), keep_local_session=True)
        if auth.get_errors():
            return page(f"error {auth.get_errors()} {auth.get_last_error_reason()}")
        return page("signed out")

    return app


@contextmanager
def serve(app: Flask, port: int) -> Iterator[str]:
    """Serve ``app`` on ``localhost:port``; yields its base URL."""
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="merchant", daemon=True)
    thread.start()
    try:
        wait_for_http(f"http://127.0.0.1:{port}/nothing")
        yield f"http://localhost:{port}"
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()
