"""Impersonation ("log in as account", issue 13 item 2): someone who holds
``impersonate`` for a unit acts as one of its people in their own browser.

* **Who may** is :func:`idp.rights.require_impersonation` (the one authorisation
  function): a person (account or staff) with ``impersonate`` in the unit, never
  oneself, never an account with more rights (:func:`idp.rights.outranks`). On top,
  the target's access must grant (active, platform access, customer not blocked) and
  the target's account must be able to sign in. Admin API clients cannot: there is no
  browser to act in.
* **Start** (:func:`start`): a required reason (1-500 characters) and a time limit
  (at most ``IDP_IMPERSONATION_MINUTES``, default 30). The browser's session becomes
  a new session of the target (``sessions.impersonation_id`` set, absolute expiry =
  the limit); the actor's own session stays untouched, remembered in the
  :class:`~idp.store.models.Impersonation` row. No nesting: an acting session cannot
  start another impersonation.
* **End** (:func:`end`): by the actor (the banner's button), at the time limit
  (:func:`enforce`, run before every request), when the actor can no longer act
  (blocked) or signs out. The acting session is removed, every grant issued
  meanwhile is revoked (its refresh and access tokens die), and the browser returns to
  the actor's own session under a new id, unless that session has ended meanwhile
  (then the browser is signed out).
* **Tokens** issued meanwhile carry ``act: {"sub": <actor's sub>}`` (RFC 8693 §4.1);
  see :func:`act_for_session` and ``docs/oidc.md``.
* **Audit**: ``impersonation.started`` (reason, end time) and
  ``impersonation.ended`` (how), by the actor on behalf of the target.
* **The target** sees every impersonation on the dashboard (:func:`history`) and gets
  an e-mail when the unit's ``notify_impersonation`` policy is on (default).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import g

from idp import audit, webhooks
from idp.accounts import access_admin
from idp.accounts import lifecycle as accounts
from idp.i18n import ui_language
from idp.interaction import rp_logout, sessions
from idp.mail import outbox
from idp.rights import Actor, require_impersonation
from idp.services import settings
from idp.store import impersonations_repo, sessions_repo
from idp.store.models import Account, Impersonation, Session, new_id, utcnow
from idp.store.unit_of_work import atomic

MAX_REASON = 500
RETURNS = ("ended", "expired", "access_ended")  # ends after which the actor is back
HISTORY_LIMIT = 20


class Refused(Exception):
    """The impersonation cannot start: ``code`` is ``not_found`` (no such access in
    the unit), ``access_inactive`` (suspended, ended, no platform access, customer
    blocked), ``account_blocked``, ``invalid_reason``, ``invalid_minutes``,
    ``no_session`` or ``already_impersonating``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Started:
    """A started impersonation and where to send the browser."""

    row: Impersonation
    redirect_to: str


def _reason(text: str) -> str:
    reason = " ".join((text or "").split())
    if not reason or len(reason) > MAX_REASON:
        raise Refused("invalid_reason", f"Give a reason of 1 to {MAX_REASON} characters.")
    return reason


def _minutes(asked: int | None) -> int:
    limit = settings().impersonation_minutes
    if asked is None:
        return limit
    if asked < 1 or asked > limit:
        raise Refused("invalid_minutes", f"The time limit is 1 to {limit} minutes.")
    return asked


def start(actor: Actor, unit_id: str, access_id: str, reason: str,
          minutes: int | None = None) -> Started:  # fmt: skip
    """Let ``actor`` (signed in in this browser) act as the holder of the access
    ``access_id`` of the unit ``unit_id``. Raises :class:`idp.rights.NotPermitted`
    (:class:`idp.rights.ImpersonationRefused`) or :class:`Refused`; on success the
    browser's session is the target's from the response on."""
    why = _reason(reason)
    span = _minutes(minutes)
    try:
        access = access_admin.get(unit_id, access_id)
    except access_admin.Refused as exc:
        raise Refused("not_found", "No such access in this unit.") from exc
    require_impersonation(actor, access.account_id, unit_id)
    now = utcnow()
    if not access.grants(now):
        raise Refused("access_inactive", "This access is not active.")
    target = accounts.get(access.account_id)
    if target is None or not target.can_sign_in:
        raise Refused("account_blocked", "This account cannot sign in.")
    own = sessions.current()
    if own is None or own.account_id != actor.account_id:
        raise Refused("no_session", "Impersonation needs your own browser session.")
    if own.impersonation_id is not None:
        raise Refused("already_impersonating", "End the current impersonation first.")
    ends_at = min(now + timedelta(minutes=span), own.expires_at)
    token, id_hash = sessions.new_id()
    row = Impersonation(
        id=new_id(), unit_id=unit_id, access_id=access.id, target_account_id=target.id,
        actor_kind=actor.kind, actor_account_id=str(actor.account_id), reason=why,
        session_hash=id_hash, actor_session_hash=own.id_hash, started_at=now,
        ends_at=ends_at,
    )
    acting = Session(
        id_hash=id_hash, account_id=target.id, auth_time=now, amr=list(own.amr or []),
        acr=own.acr, created_at=now, last_seen_at=now, expires_at=ends_at,
        impersonation_id=row.id,
    )
    actor_row = accounts.get(str(actor.account_id))
    messages: list[str] = []
    with atomic():
        impersonations_repo.insert(row)
        sessions_repo.insert(acting)
        audit.record(
            audit_actor(row), "impersonation.started", f"account:{target.id}",
            {"impersonation_id": row.id, "access_id": access.id, "reason": why,
             "ends_at": ends_at.isoformat(), "actor": f"{row.actor_kind}:{row.actor_account_id}",
             "target": target.id},
            unit_id=unit_id,
        )
        webhooks.emit(unit_id=unit_id, event_type="impersonation.started", data={
            "impersonation_id": row.id, "unit_id": unit_id, "access_id": access.id,
            "account_id": target.id, "actor_kind": row.actor_kind,
            "actor_account_id": row.actor_account_id,
            "ends_at": ends_at.isoformat().replace("+00:00", "Z"),
        })
        # the policy of the access's own unit; a person without an address gets no mail
        if access.unit.notify_impersonation and target.email is not None:
            messages.append(outbox.enqueue_email(
                target.email, "impersonation", ui_language(target.locale),
                {"name": target.name, "actor_name": _display(actor_row),
                 "unit_name": access.unit.name, "reason": why, "started_at": now,
                 "ends_at": ends_at},
                commit=False,
            ))
    for message_id in messages:
        outbox.deliver_soon(message_id)
    sessions.switch_to(token, acting)
    return Started(row, "/account")


def _display(account: Account | None) -> str:
    """A person as the banner, the dashboard and the e-mail name them."""
    if account is None:
        return "?"
    name, email = account.name or "", account.email or ""
    return f"{name} <{email}>" if name and name != email else email


def audit_actor(row: Impersonation) -> audit.Actor:
    """The audit actor of what happens in ``row``: the actor, on behalf of the target."""
    if row.actor_kind == "staff":
        return audit.Actor.staff(row.actor_account_id, on_behalf_of=row.target_account_id)
    return audit.Actor("account", row.actor_account_id, on_behalf_of=row.target_account_id)


def end(row: Impersonation, how: str) -> bool:
    """End ``row`` (``how``: ``ended`` by the actor, ``expired`` at the time limit or
    ``access_ended`` when the target's access stopped granting; ``signed_out`` by
    signing out or after the idle timeout, ``actor_blocked``): remove its acting
    session, revoke the grants issued meanwhile, write the audit event. Idempotent;
    True when this call ended it. When this browser is the acting one it returns to
    the actor's own session (:func:`return_to_actor`) after ``ended``, ``expired``
    and ``access_ended``, and is signed out otherwise (the actor's own session ends
    too: whoever signs out while acting as someone means to leave)."""
    now = utcnow()
    presented = sessions.presented_hash()
    with atomic():
        ended = impersonations_repo.mark_ended(row, now, how)
        if row.session_hash:
            rp_logout.stage_end_session(row.session_hash)
        if ended:
            revoked = impersonations_repo.revoke_grants(row.id)
            audit.record(
                audit_actor(row), "impersonation.ended", f"account:{row.target_account_id}",
                {"impersonation_id": row.id, "how": how, "grants_revoked": revoked,
                 "actor": f"{row.actor_kind}:{row.actor_account_id}",
                 "target": row.target_account_id},
                unit_id=row.unit_id,
            )
            webhooks.emit(unit_id=row.unit_id, event_type="impersonation.ended", data={
                "impersonation_id": row.id, "unit_id": row.unit_id,
                "account_id": row.target_account_id, "how": how,
                "grants_revoked": revoked,
            })
    if presented is not None and presented == row.session_hash:
        return_to_actor(row, restore=how in RETURNS)
    return ended


def return_to_actor(row: Impersonation, restore: bool = True) -> Session | None:
    """Point this browser back at the actor's own session, under a new id (the old
    cookie value was never shown to the target's session, but a new id after every
    change of who is signed in costs nothing). None, and the browser signed out, when
    that session has ended, or ``restore`` is False."""
    own = sessions_repo.by_hash(row.actor_session_hash) if row.actor_session_hash else None
    now = utcnow()
    if not restore or own is None or now >= own.expires_at:
        if own is not None:
            with atomic():
                sessions_repo.remove(own.id_hash)
        sessions.switch_to("", None)
        return None
    token, id_hash = sessions.new_id()
    with atomic():
        fresh = impersonations_repo.rekey_session(own, id_hash, now)
    sessions.switch_to(token, fresh)
    return fresh


def live(impersonation_id: str | None, now: datetime | None = None) -> Impersonation | None:
    """The impersonation if it has neither ended nor reached its time limit, its
    acting session still exists (signing out, the idle timeout, blocking the target
    end what it issued too, even before the end is written), the actor can still
    sign in, and the target's access still grants (not suspended, removed, ended,
    customer not blocked). The tokens of an impersonation are checked with this on
    every use. The actor's ``impersonate`` right itself is checked at the start only;
    the time limit bounds how long a withdrawn right keeps an impersonation going."""
    if impersonation_id is None:
        return None
    row = impersonations_repo.get(impersonation_id)
    now = now or utcnow()
    if row is None or row.ended_at is not None or now >= row.ends_at:
        return None
    if row.session_hash is None or sessions_repo.by_hash(row.session_hash) is None:
        return None
    actor = accounts.get(row.actor_account_id)
    if actor is None or not actor.can_sign_in:
        return None
    access = impersonations_repo.access(row.access_id) if row.access_id else None
    if access is None or not access.grants(now):
        return None
    return row


def enforce() -> None:
    """Before every request: a browser whose session acts as someone past the time
    limit returns to the actor's own session; one idle too long, or whose actor can no
    longer act (blocked), is signed out. The impersonation ends either way. Costs
    one query for sessions that are not impersonating (the row is cached by the
    database's identity map for :func:`idp.interaction.sessions.current`)."""
    presented = sessions.presented_hash()
    if presented is None:
        return
    acting = sessions_repo.by_hash(presented)
    # held for the request: the identity map keeps only referenced rows, and
    # idp.interaction.sessions.current() then finds this one without a query
    g.presented_session_row = acting
    if acting is None or acting.impersonation_id is None:
        return
    row = impersonations_repo.get(acting.impersonation_id)
    if row is None:
        with atomic():
            sessions_repo.remove(presented)
        sessions.switch_to("", None)
        return
    now = utcnow()
    if row.ended_at is not None or now >= row.ends_at:
        how = "expired"
    elif now - acting.last_seen_at >= timedelta(minutes=settings().session_idle_minutes):
        how = "signed_out"
    else:
        actor = accounts.get(row.actor_account_id)
        access = impersonations_repo.access(row.access_id) if row.access_id else None
        if actor is None or not actor.can_sign_in:
            how = "actor_blocked"
        elif access is None or not access.grants(now):
            how = "access_ended"
        else:
            return
    end(row, how)


def acting_as() -> tuple[Impersonation, str, str, str] | None:
    """For the banner: this browser's live impersonation, the actor's and the
    target's display names and the unit's name; None when the browser acts as nobody."""
    row = sessions.current()
    if row is None or row.impersonation_id is None:
        return None
    imp = live(row.impersonation_id)
    if imp is None:
        return None
    actor = accounts.get(imp.actor_account_id)
    target = accounts.get(imp.target_account_id)
    unit = impersonations_repo.unit_names({imp.unit_id}).get(imp.unit_id, "")
    return imp, _display(actor), _display(target), unit


def end_for_session(session_hash: str, how: str) -> None:
    """End the impersonation whose acting session is ``session_hash``, if any (a
    sign-out of that session: :func:`idp.interaction.sessions.end`)."""
    row = impersonations_repo.by_session(session_hash)
    if row is not None and row.ended_at is None:
        end(row, how)


def end_current() -> bool:
    """The banner's "End now": end this browser's impersonation and return to the
    actor. False when the browser acts as nobody."""
    row = sessions.current()
    if row is None or row.impersonation_id is None:
        return False
    imp = impersonations_repo.get(row.impersonation_id)
    if imp is None:
        return False
    end(imp, "ended")
    return True


def act_for_session(session_hash: str | None) -> Impersonation | None:
    """The impersonation (live or ended) whose acting session is ``session_hash``:
    whatever is issued for such a session carries ``act``, so a token of the
    target never leaves without naming the actor."""
    if not session_hash:
        return None
    session = sessions_repo.by_hash(session_hash)  # usually loaded by this request already
    if session is not None and session.impersonation_id is None:
        return None
    return impersonations_repo.by_session(session_hash)


@dataclass(frozen=True)
class HistoryItem:
    """One impersonation as the target's dashboard shows it."""

    actor: str
    unit: str
    reason: str
    started_at: datetime
    ended_at: datetime


def history(account_id: str) -> list[HistoryItem]:
    """The newest impersonations of ``account_id`` (at most :data:`HISTORY_LIMIT`)."""
    out: list[HistoryItem] = []
    rows = impersonations_repo.for_target(account_id, HISTORY_LIMIT)
    names = impersonations_repo.unit_names({r.unit_id for r in rows})
    for row in rows:
        actor = accounts.get(row.actor_account_id)
        out.append(HistoryItem(
            actor=_display(actor), unit=names.get(row.unit_id, ""),
            reason=row.reason, started_at=row.started_at,
            ended_at=row.ended_at or row.ends_at,
        ))
    return out


def set_notify_policy(ref: str, value: bool, actor: audit.Actor | str) -> dict[str, object]:
    """Set unit ``ref``'s (id or slug) ``notify_impersonation`` (audited
    ``unit.policy``): whether its people get an e-mail when someone acts as them.
    Raises :class:`idp.units.registry.UnitError` ``not_found``."""
    from idp.units import registry as units

    unit = units.get(ref)
    if bool(unit.notify_impersonation) != value:
        with atomic():
            impersonations_repo.set_notify(unit, value)
            audit.record(actor, "unit.policy", unit.slug, {"notify_impersonation": value},
                         unit.id)
    return {"unit": unit.slug, "notify_impersonation": bool(unit.notify_impersonation)}
