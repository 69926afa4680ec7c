"""E-mail one-time codes (a possession factor below NIST SP 800-63B AAL2, §5.1.3
"out-of-band"; units needing more add TOTP or passkeys as a second factor).

Guarantees, each covered by a test in ``tests/test_email_otp*.py``:

* a code is 6 digits from :mod:`secrets` (~20 bits), valid ``IDP_OTP_MINUTES``
  (never more than 10), and stored only as a keyed hash (HMAC) bound to the login
  interaction and the address: ``otp:<interaction id>`` in the ephemeral store;
* redemption is atomic: the record is removed with ``take`` before success is
  reported, so of two parallel submissions of one code at most one succeeds;
* every submission first counts itself (``incr``) against the code: after
  ``IDP_OTP_MAX_TRIES`` wrong ones the code is gone, whatever the parallelism;
* sends are throttled per address and per client IP (``incr`` windows of 15
  minutes); a new code replaces (invalidates) the previous one;
* wrong codes of an existing account count as consecutive failures on the account
  (one atomic ``UPDATE``); at ``IDP_LOCKOUT_FAILURES`` it is locked until an
  administrator unlocks it; a good code resets the count;
* the same work is done whether or not the address has an account: unknown
  addresses get a code (their first sign-in creates the wallet); locked or blocked
  accounts get a record that never matches and a mail saying sign-in is not
  possible, so the web answers do not differ.

If the ephemeral store is down every call raises
:class:`~idp.ephemeral.EphemeralUnavailable` (answered 503): no code is accepted
and no throttle skipped.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum

from idp.crypto import random_token
from idp.interaction import Interaction
from idp.mail import outbox
from idp.services import ephemeral, hasher, settings
from idp.store import accounts_repo
from idp.store.models import Account

CODE_DIGITS = 6
MAX_CODE_MINUTES = 10
THROTTLE_WINDOW_SECONDS = 15 * 60


class SendOutcome(Enum):
    SENT = "sent"
    THROTTLED = "throttled"


class RedeemOutcome(Enum):
    OK = "ok"
    WRONG = "wrong"  # not the code; tries remain
    EXHAUSTED = "exhausted"  # too many wrong tries: the code is gone
    EXPIRED = "expired"  # no live code for this interaction (expired, used, replaced)


@dataclass(frozen=True)
class Redemption:
    outcome: RedeemOutcome
    email: str | None = None
    account: Account | None = None
    tries_left: int = 0


def code_lifetime_seconds() -> int:
    """How long a code is valid: ``IDP_OTP_MINUTES`` capped at 10 minutes."""
    return max(1, min(settings().otp_minutes, MAX_CODE_MINUTES)) * 60


def new_code() -> str:
    """A fresh code: ``CODE_DIGITS`` decimal digits from the OS CSPRNG."""
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def _record_key(interaction_id: str) -> str:
    return f"otp:{interaction_id}"


def _tries_key(code_id: str) -> str:
    return f"otp-tries:{code_id}"


def _purpose(interaction_id: str, email: str) -> str:
    return f"email-otp:{interaction_id}:{email}"


def _throttled(email: str, ip: str) -> bool:
    store, limits = ephemeral(), settings()
    per_address = store.incr(
        f"otp-send-addr:{hasher().hash(email, 'otp-throttle')}", THROTTLE_WINDOW_SECONDS
    )
    per_ip = store.incr(
        f"otp-send-ip:{hasher().hash(ip or '-', 'otp-throttle')}", THROTTLE_WINDOW_SECONDS
    )
    return per_address > limits.otp_sends_per_address or per_ip > limits.otp_sends_per_ip


def send_code(ix: Interaction, email: str, ip: str, lang: str) -> SendOutcome:
    """Send a new code for ``ix`` to the normalised ``email`` (replacing any earlier
    code of this interaction), unless a throttle says no.

    The code's record is written before its mail, so a mail never carries a code
    that was not stored; the mail goes through the outbox and is tried at once in
    the background.
    """
    if _throttled(email, ip):
        return SendOutcome.THROTTLED
    account = accounts_repo.by_email(email)
    usable = account is None or account.can_sign_in
    code = new_code()
    lifetime = code_lifetime_seconds()
    expires_at = time.time() + lifetime
    ephemeral().put(
        _record_key(ix.id),
        {
            "cid": random_token(12),
            "email": email,
            "hash": hasher().hash(code, _purpose(ix.id, email)),
            "usable": usable,
            "expires_at": expires_at,
        },
        lifetime,
    )
    expiry = datetime.fromtimestamp(expires_at, UTC)
    message_id = outbox.enqueue_email(
        to=email,
        template="code" if usable else "locked",
        lang=lang,
        context={
            "code": code if usable else None,
            "minutes": lifetime // 60,
            "client_name": ix.client_name,
            "expires_at": expiry,
        },
        discard_after=expiry if usable else None,
    )
    outbox.deliver_soon(message_id)
    return SendOutcome.SENT


def redeem_code(ix: Interaction, submitted: str, now: float | None = None) -> Redemption:
    """Check ``submitted`` against the live code of ``ix`` and, when it matches,
    consume the code atomically. ``now`` (a Unix time) defaults to the clock."""
    now = time.time() if now is None else now
    store = ephemeral()
    record = store.get(_record_key(ix.id))
    if record is None or now >= float(record.get("expires_at", 0)):
        return Redemption(RedeemOutcome.EXPIRED)
    email = str(record["email"])
    max_tries = settings().otp_max_tries
    attempt = store.incr(_tries_key(record["cid"]), code_lifetime_seconds())
    if attempt > max_tries:
        _burn(ix.id, record["cid"])
        return Redemption(RedeemOutcome.EXHAUSTED, email=email)
    code = "".join((submitted or "").split())
    matches = (
        len(code) == CODE_DIGITS
        and code.isdigit()
        and hasher().verify(code, _purpose(ix.id, email), record["hash"])
    )
    if not matches or not record.get("usable"):
        _count_failure(email)
        if attempt >= max_tries:
            _burn(ix.id, record["cid"])
            return Redemption(RedeemOutcome.EXHAUSTED, email=email)
        return Redemption(RedeemOutcome.WRONG, email=email, tries_left=max_tries - attempt)
    taken = store.take(_record_key(ix.id))
    if taken is None:
        return Redemption(RedeemOutcome.EXPIRED)
    if taken.get("cid") != record["cid"]:
        # A resend replaced the code between our read and our take: put it back.
        remaining = int(float(taken.get("expires_at", 0)) - now)
        if remaining > 0:
            store.put(_record_key(ix.id), taken, remaining)
        return Redemption(RedeemOutcome.EXPIRED)
    account = accounts_repo.by_email(email)
    if account is not None:
        if not account.can_sign_in:
            return Redemption(RedeemOutcome.EXPIRED)
        if account.failed_code_attempts:  # read just now; nothing to write when 0
            accounts_repo.reset_code_failures(account.id)
    return Redemption(RedeemOutcome.OK, email=email, account=account)


def _burn(interaction_id: str, code_id: str) -> None:
    """Remove the code of ``interaction_id`` if it is still ``code_id``."""
    store = ephemeral()
    current = store.get(_record_key(interaction_id))
    if current is not None and current.get("cid") == code_id:
        store.delete(_record_key(interaction_id))


def _count_failure(email: str) -> None:
    """Count a consecutive failure on the address's account. For an unknown address
    the same statements run against no row, so both cost the same."""
    account = accounts_repo.by_email(email)
    account_id = account.id if account is not None else "-"
    accounts_repo.record_code_failure(account_id, settings().lockout_failures)


def forget(ix: Interaction) -> None:
    """Drop any live code of ``ix`` (e.g. when the user changes the address)."""
    ephemeral().delete(_record_key(ix.id))
