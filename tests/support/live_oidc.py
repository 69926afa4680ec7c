"""A scripted employee who walks the real login pages of a live Unitgate
(``tests.support.live``), reading the one-time code from the SMTP sink: used by the
authlib and the openid-client end-to-end tests."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from tests.support.smtp import SmtpSink, code_in

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
EMAIL = "nina@corp.example"


def _csrf(html: str) -> str:
    found = CSRF_RE.search(html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def browse_login(browser: requests.Session, base: str, first: requests.Response,
                 smtp: SmtpSink, email: str = EMAIL) -> requests.Response:  # fmt: skip
    """Walk the login pages as an employee would until the browser is sent back to the
    relying party; returns that final redirect (not followed)."""
    resp = first
    for _ in range(12):
        assert resp.status_code == 303, (resp.status_code, resp.text[:500])
        target = urljoin(base, resp.headers["Location"])
        if not target.startswith(base):
            return resp
        path = urlsplit(target).path
        if path.startswith("/authorize/resume/"):
            resp = browser.get(target, allow_redirects=False)
            continue
        page = browser.get(target, allow_redirects=False)
        assert page.status_code == 200, (path, page.status_code)
        data: dict[str, Any] = {"csrf_token": _csrf(page.text)}
        if path.endswith("/code"):
            data["code"] = code_in(smtp.last_to(email))
            action = path
        elif path.endswith("/profile"):
            data.update(given_name="Nina", family_name="Neu", cost_centre="CC-7")
            action = path
        elif path.endswith("/consent"):
            data["decision"] = "allow"
            action = path
        else:  # the e-mail page
            data["email"] = email
            action = path + "/email"
        resp = browser.post(urljoin(base, action), data=data, allow_redirects=False)
    raise AssertionError("the login pages never sent the browser back")
