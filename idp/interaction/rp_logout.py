"""Logout reaches the relying parties: OpenID Connect Back-Channel Logout 1.0 and
Front-Channel Logout 1.0.

* A client registers a ``backchannel_logout_uri`` and/or a ``frontchannel_logout_uri``
  (:func:`set_channels`, ``idp clients logout-channels``). The back-channel URI obeys
  the webhooks' SSRF rules (:mod:`idp.webhooks.targets`: ``https://`` to public
  addresses only, unless ``IDP_BACKCHANNEL_ALLOW_PRIVATE``), checked at registration
  and again before each POST, connecting only to the checked addresses. The
  front-channel URI must share scheme, host and port with a registered redirect URI
  (Front-Channel Logout §2).
* A client takes part in a browser session when it receives an ID token carrying the
  session's ``sid`` (:func:`remember`, called by the token endpoint).
* When a session ends (:func:`session_ending`, called by
  :mod:`idp.interaction.sessions` in the same transaction that removes the session:
  sign-out on the dashboard, RP-initiated logout, a new sign-in replacing it, expiry
  seen on use, every session of a blocked or suspended account), each participant
  with a back-channel URI gets a logout token staged in ``backchannel_logouts``; the
  participants with a front-channel URI come back as frames for the logout page.
* Delivery (:func:`deliver_due`) claims due rows with the shared lease idiom
  (:mod:`idp.store.leases`), signs the token *at each attempt* (fresh ``iat`` and
  ``exp``, the same ``jti``: an RP that was down still gets a token it may accept),
  POSTs ``logout_token=…`` form-encoded; a 2xx answer delivers, anything else retries
  with the webhooks' back-off until :data:`MAX_ATTEMPTS`.

Logout tokens (Back-Channel Logout §2.4): JWS signed like the client's ID tokens
(``id_token_signed_response_alg``), header ``typ: logout+jwt``, claims ``iss aud iat
exp jti sub sid events``; never a ``nonce``.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlencode, urlsplit

from flask import Flask

from idp.crypto.primitives import random_token
from idp.process_cache import ProcessCache
from idp.release import clients
from idp.services import ephemeral, hasher, keyring, settings
from idp.store import rp_logout_repo, saml_repo, sessions_repo
from idp.store.background import LoopThread, start_loop
from idp.store.models import (
    BackchannelLogout,
    ClientLogoutChannel,
    OidcSessionParticipant,
    Session,
    utcnow,
)
from idp.store.unit_of_work import Conflict, atomic
from idp.webhooks import targets
from idp.webhooks.delivery import retry_delay

log = logging.getLogger("idp.logout")

EVENT = "http://schemas.openid.net/event/backchannel-logout"
TOKEN_SECONDS = 120
MAX_ATTEMPTS = 10
LEASE = timedelta(minutes=1)
KEEP = timedelta(days=7)
PRUNE_BATCH = 500
PRUNE_EVERY_SECONDS = 600.0


def sid(session_id_hash: str) -> str:
    """The ``sid`` of a session in ID and logout tokens: derived from, but not equal
    to, its storage key (the same derivation as :func:`idp.oidc.tokens.session_sid`)."""
    return hasher().hash(session_id_hash, "oidc-sid")[:32]


@dataclass(frozen=True)
class Channels:
    backchannel_logout_uri: str | None
    backchannel_logout_session_required: bool
    frontchannel_logout_uri: str | None
    frontchannel_logout_session_required: bool

    def describe(self) -> dict[str, object]:
        return {
            "backchannel_logout_uri": self.backchannel_logout_uri,
            "backchannel_logout_session_required": self.backchannel_logout_session_required,
            "frontchannel_logout_uri": self.frontchannel_logout_uri,
            "frontchannel_logout_session_required": self.frontchannel_logout_session_required,
        }


def _as_channels(row: ClientLogoutChannel | None) -> Channels:
    if row is None:
        return Channels(None, False, None, False)
    return Channels(row.backchannel_logout_uri, bool(row.backchannel_logout_session_required),
                    row.frontchannel_logout_uri, bool(row.frontchannel_logout_session_required))


def channels(client_id: str) -> Channels:
    """The client's logout channels (none registered: all ``None``)."""
    return _as_channels(rp_logout_repo.channel(client_id))


_HOST = re.compile(r"^[A-Za-z0-9.\-]+$|^\[[0-9A-Fa-f:.]+\]$")


def _plain_host(uri: str) -> bool:
    """The URI's host is a DNS name or an IP literal: nothing that could break out of
    the CSP ``frame-src`` list it ends up in."""
    host = urlsplit(uri).netloc.rsplit("@", 1)[-1]
    if host.startswith("["):
        return bool(_HOST.match(host.split("]", 1)[0] + "]"))
    return bool(_HOST.match(host.rsplit(":", 1)[0]))


def _origin(uri: str) -> tuple[str, str, int | None]:
    parts = urlsplit(uri)
    default = 443 if parts.scheme == "https" else 80
    return parts.scheme, (parts.hostname or "").lower(), parts.port or default


def set_channels(
    client_id: str,
    backchannel_logout_uri: str | None,
    backchannel_logout_session_required: bool,
    frontchannel_logout_uri: str | None,
    frontchannel_logout_session_required: bool,
) -> Channels:
    """Register (replace) the client's logout channels; an empty URI removes that
    channel. Raises :class:`idp.release.clients.ClientRegistrationError`."""
    client = clients.get(client_id)
    if client is None:
        raise clients.ClientRegistrationError(f"no client {client_id!r}")
    back = backchannel_logout_uri or None
    front = frontchannel_logout_uri or None
    if back is not None:
        clients.validate_uri(back, "backchannel_logout_uri")
        try:
            targets.check(back, settings().backchannel_allow_private)
        except targets.TargetRefused as exc:
            raise clients.ClientRegistrationError(
                f"backchannel_logout_uri: {exc.detail}"
            ) from exc
    if front is not None:
        clients.validate_uri(front, "frontchannel_logout_uri")
        if not _plain_host(front):
            raise clients.ClientRegistrationError("frontchannel_logout_uri: malformed host")
        if _origin(front) not in {_origin(u) for u in client.redirect_uris}:
            raise clients.ClientRegistrationError(
                "frontchannel_logout_uri: scheme, host and port must be those of a "
                "registered redirect URI"
            )
    row = ClientLogoutChannel(
        client_id=client_id,
        backchannel_logout_uri=back,
        backchannel_logout_session_required=bool(backchannel_logout_session_required),
        frontchannel_logout_uri=front,
        frontchannel_logout_session_required=bool(frontchannel_logout_session_required),
        updated_at=utcnow(),
    )
    with atomic():
        rp_logout_repo.put_channel(row)
    return _as_channels(row)


# The clients that registered a logout channel, per process (idp.process_cache: at
# most 2 s old, emptied by a commit here that changes a channel): a sign-in at any
# other client records no participation and costs no query.
CHANNELED: ProcessCache[frozenset[str]] = ProcessCache(
    "rp_logout_channeled_clients", (ClientLogoutChannel,), 1
)


def remember(session_id_hash: str | None, client_id: str, account_id: str) -> None:
    """Note that ``client_id`` takes part in the session (its own transaction,
    idempotent: a parallel insert of the same pair, or a session that ended
    meanwhile, leaves nothing to do)."""
    if not session_id_hash or client_id not in (
        CHANNELED.get_or_load("clients", rp_logout_repo.clients_with_channels) or ()
    ):
        return  # a client without a logout channel has nothing to be told
    if rp_logout_repo.has_participant(session_id_hash, client_id):
        return
    try:
        with atomic():
            rp_logout_repo.add_participant(OidcSessionParticipant(
                session_id_hash=session_id_hash, client_id=client_id, account_id=account_id
            ))
    except Conflict:
        return


def participant_clients(session_id_hash: str) -> list[str]:
    """The clients taking part in a session."""
    return [p.client_id for p in rp_logout_repo.participants([session_id_hash])]


def stage_participants(session_id_hash: str, client_ids: list[str], account_id: str) -> None:
    """Stage ``client_ids`` as participants of a new session (the caller commits it
    with the session)."""
    for client_id in dict.fromkeys(client_ids):
        rp_logout_repo.add_participant(OidcSessionParticipant(
            session_id_hash=session_id_hash, client_id=client_id, account_id=account_id
        ))


@dataclass(frozen=True)
class Frame:
    """One front-channel logout frame of the logout page."""

    client_id: str
    url: str

    @property
    def origin(self) -> str:
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}"


def stage_end_sessions(account_id: str, keep: str | None = None) -> int:
    """Stage the end of every browser session of ``account_id`` but the one whose hash
    is ``keep``, with a back-channel logout to each of their relying parties that
    registered one (the one way an account's sessions end in bulk: a block, a
    deactivation, a password change or reset); how many ended."""
    rows = [r for r in sessions_repo.for_account(account_id) if r.id_hash != keep]
    if not rows:
        return 0
    session_ending(rows)
    return sessions_repo.remove_for_account(account_id, keep=keep)


def stage_end_session(id_hash: str) -> None:
    """Stage the end of one session (an impersonation's acting session), with its
    relying parties' back-channel logouts."""
    row = sessions_repo.by_hash(id_hash)
    if row is not None:
        session_ending([row])
    sessions_repo.remove(id_hash)


def session_ending(rows: Sequence[Session]) -> list[Frame]:
    """Stage (in the caller's transaction, which removes the sessions) a back-channel
    logout for every participant of ``rows`` that registered one, forget the
    participants, and return the front-channel frames to render."""
    hashes = [r.id_hash for r in rows]
    parts = rp_logout_repo.participants(hashes)
    if not parts:
        return []
    chans = rp_logout_repo.channels(p.client_id for p in parts)
    frames: list[Frame] = []
    issuer = settings().issuer
    for p in parts:
        chan = chans.get(p.client_id)
        if chan is None:
            continue
        session_sid = sid(p.session_id_hash)
        if chan.backchannel_logout_uri:
            info = clients.lookup(p.client_id)
            rp_logout_repo.add_logout(BackchannelLogout(
                client_id=p.client_id,
                url=chan.backchannel_logout_uri,
                alg=info.id_token_alg if info is not None else "ES256",
                claims={
                    "iss": issuer,
                    "aud": p.client_id,
                    "jti": random_token(16),
                    "sub": p.account_id,
                    "sid": session_sid,
                    "events": {EVENT: {}},
                },
                next_attempt_at=utcnow(),
            ))
        if chan.frontchannel_logout_uri:
            joiner = "&" if urlsplit(chan.frontchannel_logout_uri).query else "?"
            query = urlencode({"iss": issuer, "sid": session_sid})
            frames.append(Frame(p.client_id, chan.frontchannel_logout_uri + joiner + query))
    rp_logout_repo.forget_participants(hashes)
    return frames


@dataclass(frozen=True)
class Ended:
    """What the page that ends a browser session must still do: render the
    front-channel ``frames``, and send the browser through the SAML Single Logout
    chain of the session's SPs (``saml``: NameID, format and SessionIndex each SP
    was given; see :func:`saml_chain`)."""

    frames: list[Frame] = field(default_factory=list)
    saml: list[dict[str, str]] = field(default_factory=list)


def saml_participants(session_id_hash: str) -> list[dict[str, str]]:
    """The SAML SPs of a session (read before it ends: they go with it)."""
    return [
        {"sp_id": p.sp_id, "name_id": p.name_id, "format": p.name_id_format,
         "session_index": p.session_index}
        for p in saml_repo.participants(session_id_hash)
    ]


SAML_CHAIN_TTL_SECONDS = 600


def saml_chain(entries: list[dict[str, str]], then: str) -> str | None:
    """Store a SAML Single Logout chain for ``entries`` that ends at the local path
    ``then``; the path that starts it (``/saml/slo/start/<id>``, one use, 10 minutes)
    or None when there is no SP to tell."""
    if not entries:
        return None
    chain_id = random_token(24)
    ephemeral().put(f"saml:slo-start:{chain_id}", {"pending": entries, "then": then},
                    SAML_CHAIN_TTL_SECONDS)
    return f"/saml/slo/start/{chain_id}"


def take_saml_chain(chain_id: str) -> dict[str, object] | None:
    """The chain stored by :func:`saml_chain` (taken: it starts once)."""
    if not 0 < len(chain_id) <= 64:
        return None
    value = ephemeral().take(f"saml:slo-start:{chain_id}")
    return value if isinstance(value, dict) else None


def logout_token(claims: dict[str, object], alg: str, now: int) -> str:
    """The signed logout token for ``claims`` at ``now`` (never a ``nonce``)."""
    body = {k: v for k, v in claims.items() if k != "nonce"}
    body.update({"iat": now, "exp": now + TOKEN_SECONDS})
    return keyring().sign_jwt(body, alg, typ="logout+jwt")


def deliver_due(app: Flask, limit: int = 50, now: datetime | None = None) -> int:
    """Claim up to ``limit`` due logouts and POST them; how many were delivered. Safe
    on several nodes at once."""
    with app.app_context():
        now = now or utcnow()
        return sum(_attempt(row, now) for row in rp_logout_repo.claim_due(now, limit, LEASE))


def prune(app: Flask, now: datetime | None = None) -> int:
    """Delete finished logouts older than :data:`KEEP` (a bounded batch)."""
    with app.app_context(), atomic():
        return rp_logout_repo.prune((now or utcnow()) - KEEP, PRUNE_BATCH)


def _attempt(row: BackchannelLogout, now: datetime) -> bool:
    conf = settings()
    token = logout_token(dict(row.claims), row.alg, int(time.time()))
    body = urlencode({"logout_token": token})
    answer = targets.post(
        row.url, {"content-type": "application/x-www-form-urlencoded"}, body,
        conf.webhook_timeout_seconds, conf.backchannel_allow_private,
    )
    attempts = (row.attempts or 0) + 1
    with atomic():
        if answer.error is None:
            rp_logout_repo.mark_sent(row.id, now)
        else:
            rp_logout_repo.mark_failed(row.id, answer.error, now + retry_delay(attempts),
                                       attempts >= MAX_ATTEMPTS)
    if answer.error is None:
        log.info("back-channel logout %s delivered to client %s", row.id, row.client_id)
        return True
    log.warning("back-channel logout %s to client %s attempt %d failed: %s", row.id,
                row.client_id, attempts, answer.error)
    return False


DeliveryThread = LoopThread


def start_delivery_thread(app: Flask, interval: float = 2.0, limit: int = 20) -> LoopThread:
    """Run :func:`deliver_due` every ``interval`` seconds (at once again after a full
    batch) in a daemon thread until stopped (:func:`idp.store.background.start_loop`)."""
    return start_loop("backchannel-logout", lambda n: deliver_due(app, n), lambda: prune(app),
                      interval=interval, limit=limit, prune_every=PRUNE_EVERY_SECONDS,
                      log=log)


def page_csp(frames: Sequence[Frame]) -> str:
    """The Content-Security-Policy of a logout page that renders ``frames``: the
    house policy, with ``frame-src`` allowing exactly the frames' origins."""
    origins = " ".join(
        dict.fromkeys(f.origin for f in frames if _plain_host(f.url))
    ) or "'none'"
    return (
        f"default-src 'self'; frame-src {origins}; frame-ancestors 'none'; "
        "form-action 'self' *; base-uri 'none'; object-src 'none'"
    )
