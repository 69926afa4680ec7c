"""The one interaction object between protocols and login methods.

Every downstream request (an OIDC authorization request now, a SAML AuthnRequest
later) becomes a pending :class:`Interaction` in the ephemeral store. Login methods
(email code, upstream SSO, ...) only *finish* it with an authenticated account and
the user's consent, then send the browser (303) to
``url_for(ix.resume_endpoint, interaction_id=ix.id)``; the protocol side consumes
the interaction there and answers the merchant. Login code never knows which
protocol the merchant spoke.

An interaction is bound to the browser that started it by a random cookie
(``ug_ix``) whose keyed hash is stored with it: an interaction id alone, leaked in a
log or a referrer, cannot be driven from another browser.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import urlsplit

from flask import Response, g, request

from idp.crypto.primitives import random_token
from idp.services import ephemeral, hasher
from idp.web import cookies

TTL_SECONDS = 30 * 60
BROWSER_COOKIE = "ug_ix"


@dataclass
class Interaction:
    id: str
    protocol: str  # "oidc" | "saml"
    client_id: str  # OIDC client_id or SAML SP entity id
    client_name: str
    resume_endpoint: str  # Flask endpoint taking ``interaction_id``; resumes the protocol
    scopes: list[str] = field(default_factory=list)
    claims: list[str] = field(default_factory=list)  # claim names the merchant asks for
    prompt: list[str] = field(default_factory=list)  # "login", "consent", ...
    max_age: int | None = None
    login_hint: str | None = None
    params: dict[str, Any] = field(default_factory=dict)  # protocol request, for resume
    require_mfa: bool = False  # step-up asked (idp.factors.acr): the login must end with TOTP
    # idp.release.merchants: the merchant behind client_id, from the cached client or the SP
    # row ("" for Unitgate's own dashboard, and in interactions of older nodes)
    merchant_id: str = ""
    browser_hash: str = ""
    created_at: float = field(default_factory=time.time)
    # progress, filled in by login methods:
    email: str | None = None
    account_id: str | None = None
    auth_time: float | None = None
    amr: list[str] = field(default_factory=list)
    acr: str | None = None
    unit_id: str | None = None
    consented: bool = False
    # the optional items the consent leaves out (idp.release.items)
    withheld: list[str] = field(default_factory=list)
    session_id_hash: str | None = None
    # what the next GET of a login page shows after a POST (idp.login.formstate)
    forms: dict[str, Any] = field(default_factory=dict)

    @property
    def authenticated(self) -> bool:
        return self.account_id is not None and self.auth_time is not None

    @property
    def finished(self) -> bool:
        return self.authenticated and self.consented


def _key(interaction_id: str) -> str:
    return f"ix:{interaction_id}"


def start(**fields: Any) -> Interaction:
    """Create and store a new interaction bound to this browser.

    The binding cookie is set on the response by :func:`set_binding_cookie`, which
    the app runs after every request.
    """
    browser_token = request.cookies.get(BROWSER_COOKIE) or random_token(32)
    g.interaction_browser_token = browser_token
    ix = Interaction(id=random_token(24), browser_hash=_browser_hash(browser_token), **fields)
    save(ix)
    return ix


def set_binding_cookie(response: Response) -> Response:
    """After-request hook: set the browser-binding cookie when an interaction started."""
    token = g.pop("interaction_browser_token", None)
    if token:
        cookies.set_private(response, BROWSER_COOKIE, token, TTL_SECONDS)
    return response


def _browser_hash(token: str) -> str:
    return hasher().hash(token, "interaction-browser")


def load(interaction_id: str) -> Interaction | None:
    """The interaction, if it exists, has not expired and belongs to this browser."""
    if not interaction_id or len(interaction_id) > 64:
        return None
    data = ephemeral().get(_key(interaction_id))
    if data is None:
        return None
    ix = _from_stored(data)
    token = request.cookies.get(BROWSER_COOKIE, "")
    if not token or not hasher().verify(token, "interaction-browser", ix.browser_hash):
        return None
    return ix


_FIELD_NAMES = tuple(f.name for f in fields(Interaction))
_FIELDS = frozenset(_FIELD_NAMES)


def _from_stored(data: dict[str, Any]) -> Interaction:
    """The interaction of a stored record; keys this version does not know (written by
    a newer node during a rolling upgrade) are ignored instead of failing the load."""
    return Interaction(**{k: v for k, v in data.items() if k in _FIELDS})


def save(ix: Interaction) -> None:
    remaining = TTL_SECONDS - (time.time() - ix.created_at)
    # A shallow dict, not dataclasses.asdict (a deep copy): the store serialises it
    # to JSON at once, so nothing can change the nested lists under it.
    record = {name: getattr(ix, name) for name in _FIELD_NAMES}
    ephemeral().put(_key(ix.id), record, max(1, int(remaining)))


def consume(ix: Interaction) -> Interaction | None:
    """Atomically remove a finished interaction so it is resumed at most once. What
    became of it stays behind for :data:`TTL_SECONDS` (:func:`ended`), so the
    browser's back button finds a friendly page instead of a dead link."""
    data = ephemeral().take(_key(ix.id))
    if data is None:
        return None
    ephemeral().put(  # ``ix`` as the caller holds it: an inline resume did not save it
        _ended_key(ix.id),
        {
            "client_name": ix.client_name,
            "protocol": ix.protocol,
            "merchant_url": merchant_home(ix.params),
            "completed": ix.finished,
            "browser_hash": ix.browser_hash,
        },
        TTL_SECONDS,
    )
    return _from_stored(data)


@dataclass(frozen=True)
class Ended:
    """An interaction that was resumed (:func:`consume`): whom it was for, where that
    merchant lives (the origin of its registered redirect or ACS URL; None when
    unknown) and whether the sign-in reached the merchant with consent."""

    client_name: str
    protocol: str
    merchant_url: str | None
    completed: bool


def _ended_key(interaction_id: str) -> str:
    return f"ix-ended:{interaction_id}"


def merchant_home(params: dict[str, Any]) -> str | None:
    """The origin (``scheme://host/``) of the URL the protocol answers the merchant
    at: OIDC's ``redirect_uri`` or SAML's ``acs_url``, both checked against the
    merchant's registration before an interaction starts. None without one."""
    for name in ("redirect_uri", "acs_url"):
        url = params.get(name)
        if not isinstance(url, str):
            continue
        parts = urlsplit(url)
        if parts.scheme in ("https", "http") and parts.netloc and "@" not in parts.netloc:
            return f"{parts.scheme}://{parts.netloc}/"
    return None


def ended(interaction_id: str) -> Ended | None:
    """What became of this browser's interaction ``interaction_id`` after it was
    resumed (None when unknown, long gone or another browser's)."""
    if not interaction_id or len(interaction_id) > 64:
        return None
    data = ephemeral().get(_ended_key(interaction_id))
    if data is None:
        return None
    token = request.cookies.get(BROWSER_COOKIE, "")
    if not token or not hasher().verify(token, "interaction-browser", data["browser_hash"]):
        return None
    return Ended(
        client_name=str(data.get("client_name", "")),
        protocol=str(data.get("protocol", "")),
        merchant_url=data.get("merchant_url"),
        completed=bool(data.get("completed")),
    )
