"""A scripted browser for the sign-in journey: follows redirects, fills and submits
the login forms (email, one-time code, wallet profile, consent) like a person would,
and stops at the merchant's redirect URI with the authorization code.

It knows no fixed sequence of URLs: after every response it looks at where it
landed (a redirect to follow, the merchant's redirect URI with ``?code=``, or a page
whose form it recognises: :func:`page_kind`) and acts on that, counting requests as
they are sent. So the login flow may add, drop or merge steps (e.g. ``/authorize``
rendering the e-mail page itself, or consent redirecting straight to the merchant);
:func:`check_pages` then says whether a journey still saw the pages a scenario is
about."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import requests

APPROVE_WORDS = ("allow", "approve", "accept", "consent", "agree", "continue", "yes", "share")
DENY_WORDS = ("deny", "cancel", "reject", "decline", "no")


class FlowError(RuntimeError):
    """The journey did not reach the redirect URI (a page or step we cannot handle)."""


@dataclass
class Form:
    action: str
    method: str
    fields: list[tuple[str, str, str, bool]] = field(default_factory=list)  # name,type,value,on
    buttons: list[tuple[str, str]] = field(default_factory=list)  # name, value
    required: set[str] = field(default_factory=set)  # fields marked ``required``

    def names(self) -> set[str]:
        return {f[0] for f in self.fields}


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self._current: Form | None = None
        self._button: dict[str, str] | None = None
        self._button_text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._current = Form(a.get("action", ""), a.get("method", "get").lower())
            self.forms.append(self._current)
        elif self._current is None:
            return
        elif tag == "input":
            kind = a.get("type", "text").lower()
            if kind in ("submit", "image"):
                if a.get("name"):
                    self._current.buttons.append((a["name"], a.get("value", "")))
                return
            if a.get("name"):
                on = kind not in ("checkbox", "radio") or "checked" in a
                self._current.fields.append((a["name"], kind, a.get("value", ""), on))
                if "required" in a:
                    self._current.required.add(a["name"])
        elif tag == "button" and a.get("type", "submit").lower() == "submit":
            self._button = a
            self._button_text = ""
        elif tag in ("select", "textarea") and a.get("name"):
            self._current.fields.append((a["name"], tag, "", True))

    def handle_data(self, data: str) -> None:
        if self._button is not None:
            self._button_text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None
        elif tag == "button" and self._button is not None and self._current is not None:
            name = self._button.get("name", "")
            value = self._button.get("value", self._button_text.strip())
            self._current.buttons.append((name, value or self._button_text.strip()))
            self._button = None


def parse_forms(html: str) -> list[Form]:
    parser = _FormParser()
    parser.feed(html)
    return parser.forms


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass
class Client:
    base: str
    client_id: str
    client_secret: str
    redirect_uri: str
    scope: str = "openid profile email"


@dataclass
class StepTimes:
    """Where one sign-in spent its time (seconds), how many requests it sent and the
    kinds of page it filled in, in order (:func:`page_kind`)."""

    total: float = 0.0
    mail_wait: float = 0.0
    token: float = 0.0
    requests: int = 0
    pages: list[str] = field(default_factory=list)


REDIRECTS = (301, 302, 303, 307, 308)
CODE_FIELDS = ("code", "otp", "one_time_code")


def page_kind(form: Form) -> str:
    """What the login page with this (chosen) form asks for: ``"totp"`` (a second
    factor, which the bench cannot answer), ``"code"`` (the e-mailed one-time code),
    ``"profile"`` (the wallet: given/family name), ``"email"``, ``"consent"`` (a form
    with an approving button), else ``"other"`` (e.g. a unit choice)."""
    names = {n.lower() for n in form.names()}
    if "totp" in form.action.lower():
        return "totp"
    if any(n in CODE_FIELDS or ("code" in n and n != "csrf_token") for n in names):
        return "code"
    if any(w in n for n in names for w in ("given", "family", "first_name", "last_name")):
        return "profile"
    if any("email" in n for n in names):
        return "email"
    if any(any(w in (n + v).lower() for w in APPROVE_WORDS) for n, v in form.buttons):
        return "consent"
    return "other"


def check_pages(
    times: StepTimes, required: tuple[str, ...], forbidden: tuple[str, ...] = ()
) -> None:
    """Raise :class:`FlowError` unless the journey filled in every page kind in
    ``required`` and none in ``forbidden``: a scenario measures the journey it names
    (e.g. a returning employee is asked for consent and never for a wallet profile)."""
    missing = [k for k in required if k not in times.pages]
    extra = [k for k in forbidden if k in times.pages]
    if missing or extra:
        raise FlowError(
            f"unexpected journey {' > '.join(times.pages) or '(no pages)'}:"
            + (f" no {', '.join(missing)} page" if missing else "")
            + (f" a {', '.join(extra)} page" if extra else "")
        )


def _alert(html: str) -> str:
    """The text of the page's error message, if any (for error reports)."""
    start = max(html.find('role="alert"'), html.find("ug-error"))
    if start < 0:
        return ""
    text = html[start:].split(">", 1)[-1].split("<", 1)[0]
    return " ".join(text.split())[:160]


class Browser:
    """One person's browser: a cookie jar and the journey logic."""

    def __init__(self, codes: Any, http: requests.Session | None = None) -> None:
        self.http = http or requests.Session()
        self.codes = codes
        self.verifier = ""

    def _pick_form(self, forms: list[Form]) -> Form:
        posts = [f for f in forms if f.method == "post"]
        if not posts:
            raise FlowError("page without a POST form")
        for wanted in ("code", "otp", "email", "given_name", "family_name"):
            for form in posts:
                if any(wanted in n for n in form.names()):
                    return form
        # consent: the form whose buttons include an approval
        for form in posts:
            if any(any(w in (n + v).lower() for w in APPROVE_WORDS) for n, v in form.buttons):
                return form
        return max(posts, key=lambda f: len(f.fields))

    def _fill(self, form: Form, email: str, times: StepTimes) -> dict[str, str]:
        data: dict[str, str] = {}
        for name, kind, value, on in form.fields:
            lname = name.lower()
            if kind in ("checkbox", "radio"):
                if on or kind == "checkbox":  # share everything asked for
                    data[name] = value or "on"
            elif "email" in lname or lname in ("username", "login"):
                data[name] = email
            elif lname in ("code", "otp", "one_time_code") or (
                "code" in lname and kind != "hidden"
            ):
                data[name] = self._await_code(email, times)
            elif "given" in lname or "first" in lname:
                data[name] = "Bench"
            elif "family" in lname or "last" in lname:
                data[name] = "Runner"
            elif kind == "hidden" or value:
                data[name] = value
            elif name in form.required:  # e.g. a unit's required profile field
                data[name] = "Bench"
            else:
                data[name] = value
        approve = [
            (n, v) for n, v in form.buttons if any(w in (n + v).lower() for w in APPROVE_WORDS)
        ]
        usable = approve or [
            (n, v) for n, v in form.buttons if not any(w in (n + v).lower() for w in DENY_WORDS)
        ]
        if usable and usable[0][0]:
            data[usable[0][0]] = usable[0][1]
        return data

    def _await_code(self, email: str, times: StepTimes, timeout: float = 30.0) -> str:
        started = time.perf_counter()
        while time.perf_counter() - started < timeout:
            code = self.codes.get(email.lower())
            if code:
                self.codes.pop(email.lower(), None)
                times.mail_wait += time.perf_counter() - started
                return code
            time.sleep(0.005)
        raise FlowError(f"no code arrived for {email}")

    def authorize(self, client: Client, email: str, times: StepTimes) -> str:
        """Run the journey from the authorization request to the redirect URI and
        return the authorization code (the PKCE verifier stays in ``self.verifier``)."""
        verifier, challenge = pkce_pair()
        self.verifier = verifier
        query = urlencode(
            {
                "response_type": "code",
                "client_id": client.client_id,
                "redirect_uri": client.redirect_uri,
                "scope": client.scope,
                "state": secrets.token_urlsafe(8),
                "nonce": secrets.token_urlsafe(8),
                "code_challenge": challenge,
                "code_challenge_method": "S256",
                "login_hint": email,
            }
        )
        resp = self.http.get(f"{client.base}/authorize?{query}", allow_redirects=False)
        times.requests += 1
        method = "GET"
        for _ in range(25):
            if resp.status_code in REDIRECTS:
                location = urljoin(resp.url, resp.headers["Location"])
                if method == "POST" and resp.status_code in (307, 308):
                    # a browser would re-POST the form; SECURITY.md: 303 after a POST
                    raise FlowError(f"{resp.status_code} after POST {resp.url} (not 303)")
                if location.startswith(client.redirect_uri):
                    params = parse_qs(urlsplit(location).query)
                    if "code" not in params:
                        raise FlowError(f"redirect without code: {location[:200]}")
                    return params["code"][0]
                resp = self.http.get(location, allow_redirects=False)
                times.requests += 1
                method = "GET"
                continue
            if resp.status_code != 200 or "html" not in resp.headers.get("Content-Type", ""):
                raise FlowError(f"{resp.status_code} at {resp.url}: {resp.text[:200]}")
            try:
                form = self._pick_form(parse_forms(resp.text))
            except FlowError as exc:
                raise FlowError(f"{exc} at {resp.url}: {_alert(resp.text)}") from None
            kind = page_kind(form)
            if kind == "totp":
                raise FlowError(f"a second-factor (TOTP) page at {resp.url}")
            if times.pages and times.pages[-1] == kind:  # the same page again: refused
                raise FlowError(f"the {kind} page came back at {resp.url}: {_alert(resp.text)}")
            times.pages.append(kind)
            data = self._fill(form, email, times)
            resp = self.http.post(
                urljoin(resp.url, form.action or resp.url), data=data, allow_redirects=False
            )
            times.requests += 1
            method = "POST"
        raise FlowError(f"too many steps: {' > '.join(times.pages)}")

    def exchange(self, client: Client, code: str, times: StepTimes) -> dict[str, Any]:
        """POST the code to the token endpoint (client_secret_basic, PKCE verifier)."""
        started = time.perf_counter()
        resp = self.http.post(
            f"{client.base}/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": client.redirect_uri,
                "code_verifier": self.verifier,
            },
            auth=(client.client_id, client.client_secret),
        )
        times.token += time.perf_counter() - started
        times.requests += 1
        if resp.status_code != 200:
            raise FlowError(f"token endpoint said {resp.status_code}: {resp.text[:200]}")
        body: dict[str, Any] = resp.json()
        if "id_token" not in body:
            raise FlowError("no id_token in the token response")
        return body
