"""Repository of TOTP credentials (``totp_credentials``) and the units' TOTP policy.

The replay guard is a single conditional ``UPDATE ... SET last_used_step = :step
WHERE last_used_step < :step``: of two parallel submissions of one code at most one
changes a row, so at most one passes (RFC 6238 §5.2: "the verifier MUST NOT accept
the second attempt of the OTP after the successful validation has been issued").
That claim (:func:`claim_step`) is committed on its own
(:func:`idp.store.unit_of_work.claim`); every other write here is only staged and
committed by its caller (:func:`idp.store.unit_of_work.atomic`).
"""

from __future__ import annotations

from sqlalchemy import bindparam, delete, exists, or_, select, update

from idp.store import unit_of_work
from idp.store.db import db, rowcount
from idp.store.models import Access, AuditEvent, TotpCredential, Unit, utcnow


def for_account(account_id: str) -> TotpCredential | None:
    """The account's credential (confirmed or still being set up), or None."""
    return db.session.scalars(_FOR_ACCOUNT, {"account_id": account_id}).first()


# Hot statements (every sign-in asks whether TOTP is owed) are built once.
_FOR_ACCOUNT = select(TotpCredential).where(TotpCredential.account_id == bindparam("account_id"))


def start_enrolment(account_id: str, secret_sealed: str) -> TotpCredential:
    """Stage a new unconfirmed credential for ``account_id``, replacing an earlier
    unconfirmed one. The commit raises :class:`idp.store.unit_of_work.Conflict` (and
    writes nothing) when a confirmed one exists or a parallel request stored one
    first."""
    db.session.execute(
        delete(TotpCredential).where(
            TotpCredential.account_id == account_id,
            TotpCredential.confirmed_at.is_(None),
        )
    )
    row = TotpCredential(account_id=account_id, secret_sealed=secret_sealed)
    db.session.add(row)
    return row


def claim_step(account_id: str, step: int, confirm: bool, audit: AuditEvent | None) -> bool:
    """Accept time step ``step`` for the account: True for exactly one caller when the
    step is newer than every step accepted before. With ``confirm`` only an
    unconfirmed credential matches and it becomes confirmed; otherwise only a
    confirmed one matches. ``audit`` is written in the same transaction on success.
    A claim committed on its own (:func:`idp.store.unit_of_work.claim`)."""
    condition = (
        TotpCredential.confirmed_at.is_(None)
        if confirm
        else TotpCredential.confirmed_at.is_not(None)
    )
    values: dict[str, object] = {"last_used_step": step}
    if confirm:
        values["confirmed_at"] = utcnow()
    with unit_of_work.claim():
        result = db.session.execute(
            update(TotpCredential)
            .where(
                TotpCredential.account_id == account_id,
                TotpCredential.last_used_step < step,
                condition,
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        won = rowcount(result) == 1
        if won and audit is not None:
            db.session.add(audit)
    db.session.expire_all()
    return won


def remove(account_id: str, audit: AuditEvent) -> bool:
    """Stage the deletion of the account's credential with ``audit``; False (and
    nothing staged) when it had none."""
    result = db.session.execute(
        delete(TotpCredential).where(TotpCredential.account_id == account_id)
    )
    removed = rowcount(result) > 0
    if removed:
        db.session.add(audit)
    return removed


def second_factor_expected(account_id: str) -> bool:
    """One query: the account confirmed TOTP, or a unit of its memberships requires it."""
    return bool(db.session.scalar(_SECOND_FACTOR_EXPECTED, {"account_id": account_id}))


_SECOND_FACTOR_EXPECTED = select(
    or_(
        exists().where(
            TotpCredential.account_id == bindparam("account_id"),
            TotpCredential.confirmed_at.is_not(None),
        ),
        exists()
        .where(Access.account_id == bindparam("account_id"))
        .where(Access.unit_id == Unit.id, Unit.require_totp.is_(True)),
    )
)


def units_requiring(account_id: str) -> list[Unit]:
    """The units of the account's memberships whose policy requires TOTP."""
    return list(db.session.scalars(_UNITS_REQUIRING, {"account_id": account_id}))


_UNITS_REQUIRING = (
    select(Unit)
    .join(Access, Access.unit_id == Unit.id)
    .where(Access.account_id == bindparam("account_id"), Unit.require_totp.is_(True))
    .order_by(Unit.name)
)


def set_unit_policy(unit: Unit, require_totp: bool, audit: AuditEvent) -> None:
    """Stage the unit's ``require_totp`` with ``audit``."""
    unit.require_totp = require_totp
    db.session.add(audit)
