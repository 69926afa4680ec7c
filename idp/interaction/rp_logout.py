"""Logout reaches the relying parties: OpenID Connect Back-Channel Logout 1.0 and
Front-Channel Logout 1.0, and SAML SPs (browser chain or SOAP back channel).

* A client registers a ``backchannel_logout_uri`` and/or a ``frontchannel_logout_uri``
  (:func:`set_channels`, ``idp clients logout-channels``). The back-channel URI obeys
  the webhooks' SSRF rules (:mod:`idp.webhooks.targets`: ``https://`` to public
  addresses only, unless ``IDP_BACKCHANNEL_ALLOW_PRIVATE``), checked at registration
  and again before each POST, connecting only to the checked addresses. The
  front-channel URI must share scheme, host and port with a registered redirect URI
  (Front-Channel Logout §2).
* A client takes part in a browser session when it receives an ID token carrying the
  session's ``sid`` (:func:`remember`, called by the token endpoint).
* When a session ends, whatever ended it (sign-out on the dashboard, RP-initiated
  logout, SAML Single Logout, a new sign-in replacing it, expiry seen on use or found
  by the sweeper, every session of a blocked or suspended account, a password change
  or reset), :func:`session_ending` tells every participant by the channel it
  registered, in the same transaction that removes the session: each OIDC client
  with a back-channel URI gets a logout token staged in ``backchannel_logouts``;
  with a browser there, the front-channel URIs come back as frames and the SAML SPs
  with browser endpoints as the Single Logout chain for the page (:func:`finish`);
  SAML SPs otherwise get a SOAP LogoutRequest (a ``saml`` row of the same queue, sent
  by :mod:`idp.saml.soap_logout`) when their metadata has a SOAP endpoint; whoever
  cannot be reached is recorded in the audit (:data:`NOT_TOLD`).
* Sessions that time out unseen are found by :func:`sweep_unseen` (a loop in every
  worker, one node at a time under a lease) and ended once (:func:`end_unseen`).
  The same loop deletes the rows of sessions that ended a day ago and have no
  participant left (:func:`prune_ended_sessions`).
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

from flask import Flask, Response

from idp import audit
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
from idp.web.redirects import redirect
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


def validate_channels(
    redirect_uris: Sequence[str],
    backchannel_logout_uri: str | None,
    frontchannel_logout_uri: str | None,
) -> tuple[str | None, str | None]:
    """The back- and front-channel logout URIs (an empty one: none) that a client with
    ``redirect_uris`` may register; raises
    :class:`idp.release.clients.ClientRegistrationError` naming the field. Writes
    nothing (``idp apply`` plans with it)."""
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
        if _origin(front) not in {_origin(u) for u in redirect_uris}:
            raise clients.ClientRegistrationError(
                "frontchannel_logout_uri: scheme, host and port must be those of a "
                "registered redirect URI"
            )
    return back, front


def set_channels(
    client_id: str,
    backchannel_logout_uri: str | None,
    backchannel_logout_session_required: bool,
    frontchannel_logout_uri: str | None,
    frontchannel_logout_session_required: bool,
    *,
    actor: audit.Actor | str,
) -> Channels:
    """Register (replace) the client's logout channels; an empty URI removes that
    channel. A change is audited ``client.update`` by ``actor`` with the names of the
    changed fields. Raises :class:`idp.release.clients.ClientRegistrationError`
    (:func:`validate_channels`)."""
    client = clients.get(client_id)
    if client is None:
        raise clients.ClientRegistrationError(f"no client {client_id!r}")
    back, front = validate_channels(
        client.redirect_uris or [], backchannel_logout_uri, frontchannel_logout_uri
    )
    row = ClientLogoutChannel(
        client_id=client_id,
        backchannel_logout_uri=back,
        backchannel_logout_session_required=bool(backchannel_logout_session_required),
        frontchannel_logout_uri=front,
        frontchannel_logout_session_required=bool(frontchannel_logout_session_required),
        updated_at=utcnow(),
    )
    before = channels(client_id).describe()
    after = _as_channels(row)
    changed = sorted(k for k, v in after.describe().items() if before.get(k) != v)
    if not changed:
        return after
    with atomic():
        rp_logout_repo.put_channel(row)
        audit.record(actor, "client.update", client_id, {"fields": changed})
    return after


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
    is ``keep``, telling each of their participants by the back channel it registered
    (the one way an account's sessions end in bulk: a block, a deactivation, a
    password change or reset); how many ended."""
    rows = [r for r in sessions_repo.for_account(account_id) if r.id_hash != keep]
    if not rows:
        return 0
    session_ending(rows, browser=False)
    return sessions_repo.remove_for_account(account_id, keep=keep)


def stage_end_session(id_hash: str) -> None:
    """Stage the end of one session without its browser (an impersonation's acting
    session), telling its participants by their back channels."""
    row = sessions_repo.by_hash(id_hash)
    if row is not None:
        session_ending([row], browser=False)
    sessions_repo.remove(id_hash)


@dataclass(frozen=True)
class Ended:
    """What the page that ends a browser session must still do: render the
    front-channel ``frames``, and send the browser through the SAML Single Logout
    chain of the session's SPs (``saml``: NameID, format and SessionIndex each SP
    was given; see :func:`saml_chain`)."""

    frames: list[Frame] = field(default_factory=list)
    saml: list[dict[str, str]] = field(default_factory=list)


# saml-bindings 3.2 (idp.saml.constants.BINDING_SOAP; this layer cannot import it).
SAML_SOAP = "urn:oasis:names:tc:SAML:2.0:bindings:SOAP"
# Audit action for a participant that no channel it registered can reach.
NOT_TOLD = "logout.participant_not_told"


def _soap_endpoint(endpoints: Sequence[dict[str, Any]]) -> str | None:
    return next((str(e["url"]) for e in endpoints if e.get("binding") == SAML_SOAP), None)


def _has_browser_endpoint(endpoints: Sequence[dict[str, Any]]) -> bool:
    return any(e.get("binding") != SAML_SOAP for e in endpoints)


def session_ending(rows: Sequence[Session], browser: bool, answered_sp: str | None = None,
                   ) -> Ended:
    """The one place where ending sessions reaches their participants, whatever
    ended them. Stages, in the caller's transaction (which removes the sessions):

    * for each OIDC client, a back-channel logout token when it registered a
      ``backchannel_logout_uri``; a front-channel frame when it registered a
      ``frontchannel_logout_uri`` and a browser (``browser``) is there to render it;
    * for each SAML SP, a place in the browser's Single Logout chain (HTTP-Redirect
      or HTTP-POST) when a browser is there and the SP has such an endpoint, else a
      signed LogoutRequest over SOAP when its metadata has a SOAP
      SingleLogoutService;

    and records in the audit (:data:`NOT_TOLD`) every participant that none of its
    channels can reach. ``answered_sp``: the SAML SP whose own LogoutRequest ends the
    session (it gets its LogoutResponse instead). Returns the frames and the SAML chain for the page
    (:func:`finish`)."""
    hashes = [r.id_hash for r in rows]
    account_of = {r.id_hash: r.account_id for r in rows}
    frames: list[Frame] = []
    chain: list[dict[str, str]] = []
    not_told: list[dict[str, str]] = []
    issuer = settings().issuer
    parts = rp_logout_repo.participants(hashes)
    chans = rp_logout_repo.channels(p.client_id for p in parts)
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
        if chan.frontchannel_logout_uri and browser:
            joiner = "&" if urlsplit(chan.frontchannel_logout_uri).query else "?"
            query = urlencode({"iss": issuer, "sid": session_sid})
            frames.append(Frame(p.client_id, chan.frontchannel_logout_uri + joiner + query))
        elif chan.frontchannel_logout_uri and not chan.backchannel_logout_uri:
            not_told.append({"client_id": p.client_id, "account_id": p.account_id,
                             "reason": "front_channel_only"})
    if parts:
        rp_logout_repo.forget_participants(hashes)
    saml_parts = saml_repo.participants_of(hashes)
    sps = saml_repo.by_ids([p.sp_id for p in saml_parts])
    for sp_part in saml_parts:
        sp = sps.get(sp_part.sp_id)
        if sp is None or sp.id == answered_sp:
            continue
        entry = {"sp_id": sp.id, "name_id": sp_part.name_id, "format": sp_part.name_id_format,
                 "session_index": sp_part.session_index}
        endpoints = list(sp.slo_endpoints or [])
        soap = _soap_endpoint(endpoints)
        if browser and _has_browser_endpoint(endpoints):
            chain.append(entry)
        elif soap is not None:
            rp_logout_repo.add_logout(BackchannelLogout(
                kind="saml", client_id=sp.id, url=soap, alg="RS256",
                claims={**entry, "entity_id": sp.entity_id}, next_attempt_at=utcnow(),
            ))
        elif endpoints:
            not_told.append({"sp_id": sp.id, "account_id": account_of[sp_part.session_id_hash],
                             "reason": "no_soap_endpoint"})
    for item in not_told:
        audit.record(audit.Actor.system("logout"), NOT_TOLD,
                     item.get("client_id") or item.get("sp_id"), item)
    return Ended(frames, chain)


class _AlreadyEnded(Exception):
    """Another transaction removed the session first (rolls this one back)."""


def end_unseen(row: Session) -> bool:
    """End one session that ended without its browser (expired, idle), telling its
    participants by their back channels; exactly once across nodes: of several
    callers for the same session only the one whose delete removed it commits what
    it staged. True if this call ended it."""
    try:
        with atomic():
            session_ending([row], browser=False)
            if sessions_repo.remove(row.id_hash) == 0:
                raise _AlreadyEnded
    except _AlreadyEnded:
        return False
    return True


SWEEP_LEASE = "rp-logout:sweep-lease"
SWEEP_LEASE_SECONDS = 120
SWEEP_EVERY_SECONDS = 30.0


def sweep_unseen(app: Flask, limit: int = 100, now: datetime | None = None) -> int:
    """Find sessions that ended unseen (past ``IDP_SESSION_ABSOLUTE_HOURS`` or idle
    for ``IDP_SESSION_IDLE_MINUTES``) and still have logout participants, and end
    them with their back-channel logouts (:func:`end_unseen`); how many. One node
    sweeps at a time (a lease in the shared ephemeral store); a second sweeper, or a
    browser that comes back to its expired session meanwhile, still tells each
    participant once."""
    with app.app_context():
        now = now or utcnow()
        holder = random_token(12)
        if not ephemeral().add(SWEEP_LEASE, holder, SWEEP_LEASE_SECONDS):
            return 0
        try:
            idle_since = now - timedelta(minutes=settings().session_idle_minutes)
            rows = sessions_repo.unseen_with_participants(now, idle_since, limit)
            return sum(end_unseen(r) for r in rows)
        finally:
            if ephemeral().get(SWEEP_LEASE) == holder:
                ephemeral().delete(SWEEP_LEASE)


# Retention of ended sessions (docs/operations.md, "Session retention"): a session
# that expired, or went idle, more than ENDED_SESSION_KEEP ago and has no logout
# participant left is deleted, SESSION_PRUNE_BATCH rows per transaction. Nothing a
# person sees needs it: the dashboard lists live sessions only, and the sign-in
# history (``sign_ins``), the impersonation history (``impersonations``) and the
# audit log are tables of their own. The day covers a browser coming back, a code
# exchanged at the token endpoint just as its session ends, and clocks of nodes apart.
ENDED_SESSION_KEEP = timedelta(hours=24)
SESSION_PRUNE_BATCH = 500
SESSION_PRUNE_ROUNDS = 10
SESSION_PRUNE_EVERY_SECONDS = 60.0
PRUNED_SESSIONS = "session.pruned"


def prune_ended_sessions(app: Flask, now: datetime | None = None,
                         limit: int = SESSION_PRUNE_BATCH) -> int:
    """Delete up to ``limit`` sessions that ended more than :data:`ENDED_SESSION_KEEP`
    before ``now`` (past ``IDP_SESSION_ABSOLUTE_HOURS``, or idle for
    ``IDP_SESSION_IDLE_MINUTES``; signed-out sessions are deleted when they end) and
    have no logout participant (those the sweeper ends first, telling them), in one
    transaction with one audit event :data:`PRUNED_SESSIONS` (actor
    ``system:retention``, the count) when any; how many. Kept however long idle: a
    session that acts as someone until its time limit, and the actor's own session
    while the impersonation has not ended. Idempotent and safe on several nodes at
    once: each row is deleted, and counted, once; a second run finds nothing."""
    with app.app_context():
        now = now or utcnow()
        expired_before = now - ENDED_SESSION_KEEP
        idle_before = expired_before - timedelta(minutes=settings().session_idle_minutes)
        with atomic():
            gone = sessions_repo.prune_ended(expired_before, idle_before, limit)
            if gone:
                audit.record(audit.Actor.system("retention"), PRUNED_SESSIONS, None,
                             {"sessions": gone,
                              "keep_hours": int(ENDED_SESSION_KEEP.total_seconds() // 3600)})
        if gone:
            log.info("deleted %d sessions that ended more than %s ago", gone,
                     ENDED_SESSION_KEEP)
        return gone


def _prune_sessions_backlog(app: Flask) -> int:
    """The sweeper loop's retention step: :func:`prune_ended_sessions` again while it
    deletes full batches, at most :data:`SESSION_PRUNE_ROUNDS` (a backlog drains over
    a few steps, each transaction small)."""
    total = 0
    for _ in range(SESSION_PRUNE_ROUNDS):
        gone = prune_ended_sessions(app)
        total += gone
        if gone < SESSION_PRUNE_BATCH:
            break
    return total


def start_sweeper_thread(app: Flask, interval: float = SWEEP_EVERY_SECONDS,
                         limit: int = 100) -> LoopThread:
    """Run :func:`sweep_unseen` every ``interval`` seconds in a daemon thread
    (:func:`idp.store.background.start_loop`), and the retention of ended sessions
    (:func:`prune_ended_sessions`) at its first step and then every
    :data:`SESSION_PRUNE_EVERY_SECONDS`."""
    return start_loop("session-sweeper", lambda n: sweep_unseen(app, n),
                      lambda: _prune_sessions_backlog(app), interval=interval, limit=limit,
                      prune_every=SESSION_PRUNE_EVERY_SECONDS, log=log)


def finish(
    ended: Ended,
    then: str | None,
    page: Callable[[list[Frame], str | None], Response],
    chain_then: str | None = None,
) -> Response:
    """The answer of every page that ends a browser session (OIDC ``/logout``, the
    dashboard's sign-out, SAML Single Logout): the front-channel frames rendered by
    ``page(frames, continue_to)`` under a CSP that allows exactly their origins,
    then on through the SAML chain of ``ended`` (which ends at ``chain_then`` or
    ``then``) or to ``then``. Without frames: a 303 to where it goes on, else
    ``page([], None)``."""
    next_url = saml_chain(ended.saml, chain_then or then or "") if ended.saml else None
    next_url = next_url or then
    if not ended.frames:
        if next_url:
            resp = redirect(next_url, 303)
            resp.headers["Cache-Control"] = "no-store"
            return resp
        return page([], None)
    resp = page(ended.frames, next_url)
    resp.headers["Content-Security-Policy"] = page_csp(ended.frames)
    resp.headers["Cache-Control"] = "no-store"
    return resp


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


# How rows of a kind other than ``oidc`` are sent: ``SENDERS[kind](row)`` gives the
# headers and body of the attempt's POST. The SAML views register ``saml``
# (idp.saml.soap_logout: a signed LogoutRequest in a SOAP envelope); this layer
# cannot build SAML messages itself.
SENDERS: dict[str, Callable[[BackchannelLogout], tuple[dict[str, str], str]]] = {}


def _oidc_request(row: BackchannelLogout) -> tuple[dict[str, str], str]:
    token = logout_token(dict(row.claims), row.alg, int(time.time()))
    return ({"content-type": "application/x-www-form-urlencoded"},
            urlencode({"logout_token": token}))


def _attempt(row: BackchannelLogout, now: datetime) -> bool:
    conf = settings()
    sender = _oidc_request if row.kind == "oidc" else SENDERS.get(row.kind)
    if sender is None:
        answer = targets.Answer(None, 0, f"no sender for {row.kind!r} logouts", None)
    else:
        headers, body = sender(row)
        answer = targets.post(row.url, headers, body, conf.webhook_timeout_seconds,
                              conf.backchannel_allow_private)
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
