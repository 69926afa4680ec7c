"""A real browser (headless Chromium through Playwright) signs in at a merchant whose
SAML SP (python3-saml, strict) runs on another site (``localhost`` vs the IdP's
``127.0.0.1``), so the browser applies SameSite and CSP for real:

1. the SP's page posts an AuthnRequest (HTTP-POST binding) cross-site; the IdP
   re-delivers it through a GET, the employee logs in with an e-mail code from a real
   SMTP server and consents; the nonce'd script posts the Response to the ACS;
2. a second sign-in is answered from the session without any page;
3. single logout from the SP ends the session; the next sign-in needs the login pages.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

from idp.saml import registry
from tests.support import oidc
from tests.support.processes import free_port, wait_for_http
from tests.support.saml_sp import ServiceProvider
from tests.support.saml_sp_server import merchant_app, serve
from tests.support.smtp import SmtpSink, code_in

EMAIL = "bea@corp.example"
pytestmark = pytest.mark.browser


@pytest.fixture
def idp_port() -> int:
    return free_port()


@pytest.fixture
def settings_overrides(smtp_server: SmtpSink, idp_port: int) -> dict[str, object]:
    return {"smtp_url": smtp_server.url, "issuer": f"http://127.0.0.1:{idp_port}"}


@pytest.fixture
def idp_url(app: Flask, idp_port: int) -> Iterator[str]:
    server = make_server("127.0.0.1", idp_port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="idp", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{idp_port}"
    wait_for_http(url + "/healthz")
    yield url
    server.shutdown()
    thread.join(10)
    server.server_close()


def test_saml_sign_in_and_single_logout_in_a_browser(
    app: Flask, idp_url: str, smtp_server: SmtpSink, browser: Any
) -> None:
    account = oidc.make_account(app, EMAIL)
    oidc.make_unit(app, account, "Corp GmbH", roles=["buyer"], facts={"cost_centre": "CC-9"})
    sp_port = free_port()
    with app.test_client() as c:
        idp_metadata = c.get("/saml/metadata").data
    sp = ServiceProvider(idp_metadata, host=f"localhost:{sp_port}", scheme="http")
    with app.app_context():
        registry.register(sp.metadata(), name="Office Supplies Ltd", actor="test")

    with serve(merchant_app(sp, idp_url + "/saml/sso"), sp_port) as merchant:
        context = browser.new_context(locale="en-GB")
        page = context.new_page()
        problems: list[str] = []

        def console(message: Any) -> None:
            if message.type == "error" and "favicon.ico" not in message.location.get("url", ""):
                problems.append(message.text)

        page.on("console", console)
        page.on("pageerror", lambda e: problems.append(str(e)))

        # 1. cross-site HTTP-POST AuthnRequest, login pages, consent, auto-post
        page.goto(f"{merchant}/login")
        page.get_by_role("button", name="Sign in with Unitgate").click()
        page.wait_for_url(re.compile(r"/interaction/[\w-]+$"))
        page.get_by_label("Work e-mail address").fill(EMAIL)
        page.get_by_role("button", name="Send code").click()
        page.wait_for_url(re.compile(r"/code$"))
        page.get_by_label("Code", exact=True).fill(code_in(smtp_server.last_to(EMAIL)))
        page.get_by_role("button", name="Continue").click()
        page.wait_for_url(re.compile(r"/consent$"))
        assert "Office Supplies Ltd" in page.locator("main").inner_text()
        page.get_by_role("button", name="Allow").click()
        page.wait_for_url(f"{merchant}/saml/acs")
        assert page.locator("#result").inner_text() == f"signed in {EMAIL}"

        # 2. again: the live session answers at once, even though the POST is cross-site
        page.goto(f"{merchant}/login")
        page.get_by_role("button", name="Sign in with Unitgate").click()
        page.wait_for_url(f"{merchant}/saml/acs")
        assert page.locator("#result").inner_text() == f"signed in {EMAIL}"

        # 3. single logout, then the login pages again
        page.goto(f"{merchant}/logout")
        page.wait_for_url(re.compile(re.escape(merchant) + r"/saml/sls\?"))
        assert page.locator("#result").inner_text() == "signed out"
        page.goto(f"{merchant}/login")
        page.get_by_role("button", name="Sign in with Unitgate").click()
        page.wait_for_url(re.compile(r"/interaction/[\w-]+$"))
        assert [p for p in problems if "Content Security Policy" in p] == []
        assert problems == []
        context.close()
