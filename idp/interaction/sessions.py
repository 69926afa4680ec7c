"""Server-side browser sessions.

The cookie ``ug_session`` carries 256 random bits; the database keeps only its keyed
hash, the account, ``auth_time`` and ``amr``. A new id is issued at every login (no
fixation). A session ends after ``IDP_SESSION_IDLE_MINUTES`` without use or
``IDP_SESSION_ABSOLUTE_HOURS`` after login, whichever comes first, and at once when
its account is blocked (:func:`end_all_for_account`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import Response, g, request

from idp import audit
from idp.crypto.primitives import random_token
from idp.interaction import rp_logout
from idp.services import hasher, settings
from idp.store import sessions_repo
from idp.store.models import Session, utcnow
from idp.store.unit_of_work import atomic
from idp.web import cookies

COOKIE = "ug_session"
TOUCH_EVERY = timedelta(seconds=60)


def _hash(token: str) -> str:
    return hasher().hash(token, "session")


def create(
    account_id: str, amr: list[str], acr: str | None = None, auth_time: datetime | None = None
) -> Session:
    """Start a new session for ``account_id``, ending the browser's previous one (and
    the impersonation, when it acted as someone). A new sign-in of the same account
    (step-up, ``prompt=login``) continues the session for its relying parties: they
    take part in the new one and get no logout; another account's sign-in logs the
    previous one out of them."""
    old = request.cookies.get(COOKIE)
    carried: list[str] = []
    if old:
        _end_impersonation(_hash(old))
        previous = sessions_repo.by_hash(_hash(old))
        with atomic():
            if (previous is not None and previous.account_id == account_id
                    and previous.impersonation_id is None):
                carried = rp_logout.participant_clients(previous.id_hash)
                sessions_repo.remove(previous.id_hash)
            else:
                _remove(_hash(old), browser=False)
    token = random_token(32)
    now = utcnow()
    row = Session(
        id_hash=_hash(token),
        account_id=account_id,
        auth_time=auth_time or now,
        amr=list(amr),
        acr=acr,
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(hours=settings().session_absolute_hours),
    )
    with atomic():
        sessions_repo.insert(row)
        rp_logout.stage_participants(row.id_hash, carried, account_id)
    g.session_cookie = token
    g.current_session = row
    return row


def new_id() -> tuple[str, str]:
    """A fresh session cookie value and the hash it is stored under."""
    token = random_token(32)
    return token, _hash(token)


def presented_hash() -> str | None:
    """The stored hash of the session cookie this browser sent, or None."""
    token = request.cookies.get(COOKIE)
    return _hash(token) if token else None


def switch_to(token: str, row: Session | None) -> None:
    """Make ``row`` (with cookie value ``token``) this browser's session from now on,
    or sign the browser out (``row`` None); impersonation's start and end."""
    g.session_cookie = token if row is not None else ""
    g.current_session = row


def current() -> Session | None:
    """The live session of this request's browser, or None (expired ones are removed)."""
    if "current_session" in g:
        return g.current_session
    token = request.cookies.get(COOKIE)
    row = sessions_repo.by_hash(_hash(token)) if token else None
    if row is not None:
        now = utcnow()
        idle = timedelta(minutes=settings().session_idle_minutes)
        if now >= row.expires_at or now - row.last_seen_at >= idle:
            rp_logout.end_unseen(row)  # no logout page here: the back channels tell
            g.session_cookie = ""
            row = None
        elif now - row.last_seen_at >= TOUCH_EVERY:
            with atomic():
                sessions_repo.touch(row, now)
    g.current_session = row
    return row


def _end_impersonation(id_hash: str) -> None:
    row = sessions_repo.by_hash(id_hash)
    if row is not None and row.impersonation_id is not None:
        from idp.interaction import impersonation  # it imports this module

        impersonation.end_for_session(row.id_hash, "signed_out")


def _remove(id_hash: str, browser: bool, answered_sp: str | None = None) -> rp_logout.Ended:
    """Remove one session (staged), telling its participants
    (:func:`idp.interaction.rp_logout.session_ending`; ``browser``: a logout page
    will render what comes back, the frames and the SAML chain)."""
    row = sessions_repo.by_hash(id_hash)
    if row is None:
        return rp_logout.Ended()
    ended = rp_logout.session_ending([row], browser, answered_sp)
    sessions_repo.remove(id_hash)
    return ended


def end(answered_sp: str | None = None, page: bool = True) -> rp_logout.Ended:
    """End this browser's session (logout). A session acting as someone
    (impersonation) ends the impersonation with it, audited, and the actor's own
    session too. Back-channel logouts to the session's relying parties are staged
    with the removal; the front-channel frames the logout page should render and the
    SAML SPs to send through Single Logout come back (but ``answered_sp``, the SP
    whose LogoutRequest this answers). ``page`` False: the caller renders no logout
    page, so the participants are told by their back channels only."""
    token = request.cookies.get(COOKIE)
    ended = rp_logout.Ended()
    if token:
        _end_impersonation(_hash(token))
        with atomic():
            ended = _remove(_hash(token), browser=page, answered_sp=answered_sp)
    g.current_session = None
    g.session_cookie = ""
    return ended


def stage_end_all_for_account(account_id: str) -> int:
    """Stage (the caller commits) the end of every session of an account, with the
    back-channel logouts of their relying parties; how many sessions."""
    return rp_logout.stage_end_sessions(account_id)


def end_all_for_account(account_id: str) -> int:
    """End every session of an account, on every node (they share the database)."""
    with atomic():
        return stage_end_all_for_account(account_id)


def set_cookie(response: Response) -> Response:
    """After-request hook: write or clear the session cookie when it changed."""
    token = g.pop("session_cookie", None)
    if token is None:
        return response
    if token == "":
        response.delete_cookie(COOKIE, path="/")
        return response
    cookies.set_private(response, COOKIE, token, settings().session_absolute_hours * 3600)
    return response


@dataclass(frozen=True)
class Listed:
    """One browser session of an account as its owner sees it on the dashboard:
    ``handle`` names it in forms (the ``sid`` relying parties know,
    :func:`idp.interaction.rp_logout.sid`, never the stored hash); ``current`` is this
    browser's; ``acting`` someone acting as the account (an impersonation)."""

    handle: str
    signed_in_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    amr: list[str]
    current: bool
    acting: bool


def listed(account_id: str, current_hash: str | None) -> list[Listed]:
    """The account's live sessions, this browser's first, then the most recently
    used; expired ones (not yet swept) are left out."""
    now = utcnow()
    idle = timedelta(minutes=settings().session_idle_minutes)
    rows = [r for r in sessions_repo.for_account(account_id)
            if now < r.expires_at and now - r.last_seen_at < idle]
    rows.sort(key=lambda r: (r.id_hash != current_hash, -r.last_seen_at.timestamp()))
    return [
        Listed(handle=rp_logout.sid(r.id_hash), signed_in_at=r.auth_time,
               last_seen_at=r.last_seen_at, expires_at=r.expires_at, amr=list(r.amr or []),
               current=r.id_hash == current_hash, acting=r.impersonation_id is not None)
        for r in rows
    ]


def end_others(account_id: str, keep: str, handle: str | None = None) -> int:
    """The account's owner signs out elsewhere: the session named by ``handle`` (a
    :attr:`Listed.handle` of this account), or with ``handle`` None every session of
    the account but ``keep`` (this browser's, never ended here). Relying parties get
    their back-channel logouts with the removal; audited ``session.ended_elsewhere``.
    How many sessions ended (0 for a handle of no other session of this account)."""
    with atomic():
        if handle is None:
            ended = rp_logout.stage_end_sessions(account_id, keep=keep)
        else:
            found = [r for r in sessions_repo.for_account(account_id)
                     if r.id_hash != keep and rp_logout.sid(r.id_hash) == handle]
            for row in found:
                rp_logout.stage_end_session(row.id_hash)
            ended = len(found)
        if ended:
            audit.record(audit.account_actor(account_id), "session.ended_elsewhere", account_id,
                         {"sessions_ended": ended, "all_others": handle is None})
    return ended
