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
* throttles are keyed on the *requester* (:mod:`idp.factors.known_devices`: the browser
  when it is known for the address, else the client's IP or IPv6 /64), so a
  stranger's requests never count against the person: per address and requester
  ``IDP_OTP_SENDS_PER_ADDRESS``; per address for all unknown requesters together
  ``IDP_OTP_SENDS_PER_ADDRESS_UNKNOWN`` (a known browser is exempt); per IP, for
  unknown requesters, ``IDP_OTP_SENDS_PER_IP`` (sized for a company behind one
  NAT address). Windows of 15 minutes; a new code replaces the previous one;
* wrong codes of an existing account count as consecutive failures on the account
  (one atomic ``UPDATE``). From ``IDP_LOCKOUT_FAILURES`` (at most 100) on, the
  account is *soft-locked* instead of locked (NIST SP 800-63B §5.2.2 lets a
  verifier replace a hard lock by other means that keep the claimant in): 6-digit
  codes stop being accepted from requesters not known for the address, and their
  mails carry a 16-digit code (~53 bits) instead, typed into the same field. A
  redeemed 16-digit code (the mailbox proven) or ``idp accounts unlock`` resets
  the count; a known browser keeps signing in with 6-digit codes meanwhile;
* the same work is done whether or not the address has an account: unknown
  addresses get a code (their first sign-in creates the wallet); blocked accounts
  (and accounts hard-locked by an earlier version) get a record that never matches
  and a mail saying sign-in is not possible, so the web answers do not differ.

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

from idp.accounts import lifecycle as accounts
from idp.crypto.primitives import random_token
from idp.factors import known_devices
from idp.interaction.pending import Interaction
from idp.mail import outbox
from idp.observability import metrics
from idp.services import ephemeral, hasher, settings
from idp.store import accounts_repo
from idp.store.models import Account
from idp.web import client_network

CODE_DIGITS = 6
LONG_CODE_DIGITS = 16  # 10**16 ~ 2**53: the proof of the mailbox in a soft lock
MAX_CODE_MINUTES = 10
MAX_LOCKOUT_FAILURES = 100  # NIST SP 800-63B §5.2.2: no more than 100 consecutive failures
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


@dataclass(frozen=True)
class Requester:
    """Who asks for a code, as the throttles see it: ``id`` is the known browser's
    opaque id or ``ip:<network>``; ``known`` is True for a browser known for the
    address."""

    id: str
    known: bool


def code_lifetime_seconds() -> int:
    """How long a code is valid: ``IDP_OTP_MINUTES`` capped at 10 minutes."""
    return max(1, min(settings().otp_minutes, MAX_CODE_MINUTES)) * 60


def lockout_threshold() -> int:
    """Consecutive failures that soft-lock an account: ``IDP_LOCKOUT_FAILURES``
    between 1 and :data:`MAX_LOCKOUT_FAILURES`."""
    return max(1, min(settings().lockout_failures, MAX_LOCKOUT_FAILURES))


def soft_locked(account: Account | None) -> bool:
    """True when ``account`` reached :func:`lockout_threshold` consecutive failures:
    only browsers known for it may still use 6-digit codes."""
    return account is not None and (account.failed_code_attempts or 0) >= lockout_threshold()


def new_code(digits: int = CODE_DIGITS) -> str:
    """A fresh code: ``digits`` decimal digits from the OS CSPRNG."""
    return f"{secrets.randbelow(10**digits):0{digits}d}"


def _grouped(code: str) -> str:
    """A long code in groups of four digits, as the mail shows it."""
    return " ".join(code[i:i + 4] for i in range(0, len(code), 4))


def _record_key(interaction_id: str) -> str:
    return f"otp:{interaction_id}"


def _exhausted_key(interaction_id: str) -> str:
    return f"otp-exhausted:{interaction_id}"


def _tries_key(code_id: str) -> str:
    return f"otp-tries:{code_id}"


def _purpose(interaction_id: str, email: str) -> str:
    return f"email-otp:{interaction_id}:{email}"


def requester_for(email: str, ip: str) -> Requester:
    """The requester of this request for ``email``: its browser when known for the
    address (one store ``get`` when a ``ug_device`` cookie is present), else its
    client network."""
    device = known_devices.known_id(email)
    if device is not None:
        return Requester(device, known=True)
    return Requester(f"ip:{client_network.network_of(ip)}", known=False)


def _throttled(email: str, requester: Requester, scope: str = "otp") -> bool:
    """Count this send (or, with ``scope`` ``pwd``, this password attempt,
    :mod:`idp.factors.passwords`) against the limits that apply to ``requester`` and
    say whether one is exceeded. A request refused by an earlier limit is not counted
    by the later ones, so one IP can use up at most its own share of an address's
    allowance. Nothing here depends on whether ``email`` has an account. Each scope
    counts on its own: password attempts never use up an address's codes."""
    store, limits, keyed = ephemeral(), settings(), hasher()
    window = THROTTLE_WINDOW_SECONDS
    if not requester.known:
        network = requester.id.removeprefix("ip:")
        if store.incr(f"{scope}-send-ip:{keyed.hash(network, 'otp-throttle')}", window) \
                > limits.otp_sends_per_ip:
            return True
    if store.incr(_pair_key(email, requester, scope), window) > limits.otp_sends_per_address:
        return True
    if not requester.known:
        address = keyed.hash(email, "otp-throttle")
        if store.incr(f"{scope}-send-addr:{address}", window) \
                > limits.otp_sends_per_address_unknown:
            return True
    return False


def _pair_key(email: str, requester: Requester, scope: str) -> str:
    pair = hasher().hash(f"{email}\x00{requester.id}", "otp-throttle")
    return f"{scope}-send-pair:{pair}"


def throttled(email: str, requester: Requester, scope: str) -> bool:
    """:func:`_throttled` for another factor's ``scope`` (the same limits and keys,
    one home): ``pwd`` for password attempts."""
    return _throttled(email, requester, scope)


def forgive(email: str, requester: Requester, scope: str) -> None:
    """Forget ``requester``'s count for ``email`` in ``scope`` (after a correct
    password: the person's own sign-ins never throttle them; the IP and address
    counts stay)."""
    ephemeral().delete(_pair_key(email, requester, scope))


def send_code(ix: Interaction, email: str, ip: str, lang: str) -> SendOutcome:
    """Send a new code for ``ix`` to the normalised ``email`` (replacing any earlier
    code of this interaction), unless a throttle of this requester says no.

    A soft-locked account (:func:`soft_locked`) asked for by a requester not known
    for the address gets a 16-digit code; everyone else a 6-digit one. The code's
    record is written before its mail, so a mail never carries a code that was not
    stored; the mail goes through the outbox and is tried at once in the background.
    """
    requester = requester_for(email, ip)
    if _throttled(email, requester):
        metrics.count(metrics.CODES, "email", "throttled")
        return SendOutcome.THROTTLED
    account = accounts_repo.by_email(email)
    usable = account is None or account.can_sign_in
    long = soft_locked(account) and not requester.known
    code = new_code(LONG_CODE_DIGITS if long else CODE_DIGITS)
    lifetime = code_lifetime_seconds()
    expires_at = time.time() + lifetime
    ephemeral().delete(_exhausted_key(ix.id))
    ephemeral().put(
        _record_key(ix.id),
        {
            "cid": random_token(12),
            "email": email,
            "hash": hasher().hash(code, _purpose(ix.id, email)),
            "usable": usable,
            "long": long,
            "known": requester.known,
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
            "code": (_grouped(code) if long else code) if usable else None,
            "long_code": long,
            "minutes": lifetime // 60,
            "client_name": ix.client_name,
            "expires_at": expiry,
        },
        discard_after=expiry if usable else None,
    )
    outbox.deliver_soon(message_id)
    metrics.count(metrics.CODES, "email", "sent")
    return SendOutcome.SENT


def _short_code_refused(record: dict[str, object], account: Account | None) -> bool:
    """True when the (matching) 6-digit code of ``record`` may no longer sign in:
    it was sent to a requester not known for the address and the account is
    soft-locked now (also when the lock came after the send)."""
    return not (record.get("long") or record.get("known")) and soft_locked(account)


def redeem_code(ix: Interaction, submitted: str, now: float | None = None) -> Redemption:
    """:func:`_redeem_code`, with a refused code counted as a failed sign-in step (a
    good one is counted when the sign-in finishes)."""
    redemption = _redeem_code(ix, submitted, now)
    if redemption.outcome is not RedeemOutcome.OK:
        metrics.count(metrics.SIGNINS, "otp", redemption.outcome.value)
    return redemption


def _redeem_code(ix: Interaction, submitted: str, now: float | None = None) -> Redemption:
    """Check ``submitted`` against the live code of ``ix`` and, when it matches,
    consume the code atomically. ``now`` (a Unix time) defaults to the clock.

    A matching 6-digit code that :func:`_short_code_refused` is consumed and answered
    as expired (the next code will be a 16-digit one). Success makes this browser
    known for the address (:func:`idp.factors.known_devices.remember`) and resets the
    account's failure count, except that a 6-digit code from a known browser leaves
    a soft lock in place (only the 16-digit proof or an administrator lifts it)."""
    now = time.time() if now is None else now
    store = ephemeral()
    record = store.get(_record_key(ix.id))
    if record is None or now >= float(record.get("expires_at", 0)):
        if record is None and store.get(_exhausted_key(ix.id)) is not None:
            return Redemption(RedeemOutcome.EXHAUSTED)  # still "too many tries", not "expired"
        return Redemption(RedeemOutcome.EXPIRED)
    email = str(record["email"])
    max_tries = settings().otp_max_tries
    attempt = store.incr(_tries_key(record["cid"]), code_lifetime_seconds())
    if attempt > max_tries:
        _burn(ix.id, record["cid"])
        return Redemption(RedeemOutcome.EXHAUSTED, email=email)
    code = "".join((submitted or "").split())
    digits = LONG_CODE_DIGITS if record.get("long") else CODE_DIGITS
    matches = (
        len(code) == digits
        and code.isdigit()
        and hasher().verify(code, _purpose(ix.id, email), record["hash"])
    )
    if not matches or not record.get("usable"):
        _count_failure(email)
        known_devices.note_failure(email)
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
        if not account.can_sign_in or _short_code_refused(record, account):
            return Redemption(RedeemOutcome.EXPIRED)
        # read just now; nothing to write when 0 (the common case)
        if account.failed_code_attempts and (record.get("long") or not soft_locked(account)):
            accounts.reset_code_failures(account.id)
    known_devices.remember(email)
    return Redemption(RedeemOutcome.OK, email=email, account=account)


def _burn(interaction_id: str, code_id: str) -> None:
    """Remove the code of ``interaction_id`` if it is still ``code_id`` (too many wrong
    tries), and remember that for the code's lifetime, so later submissions and the
    code page say "too many tries" (:func:`code_state`) until a new code is sent."""
    store = ephemeral()
    current = store.get(_record_key(interaction_id))
    if current is not None and current.get("cid") == code_id:
        store.delete(_record_key(interaction_id))
    store.put(_exhausted_key(interaction_id), {"cid": code_id}, code_lifetime_seconds())


class CodeState(Enum):
    LIVE = "live"  # a code can be entered
    EXHAUSTED = "exhausted"  # too many wrong tries: a new code is needed
    NONE = "none"  # expired, used, or never sent


def code_state(ix: Interaction, now: float | None = None) -> CodeState:
    """Whether the code page of ``ix`` can take a code (read only, counts nothing)."""
    now = time.time() if now is None else now
    store = ephemeral()
    record = store.get(_record_key(ix.id))
    if record is not None and now < float(record.get("expires_at", 0)):
        return CodeState.LIVE
    if store.get(_exhausted_key(ix.id)) is not None:
        return CodeState.EXHAUSTED
    return CodeState.NONE


def _count_failure(email: str) -> None:
    """Count a consecutive failure on the address's account. For an unknown address
    the same statement runs against no row, so both cost the same."""
    account = accounts_repo.by_email(email)
    accounts.record_code_failure(account.id if account is not None else "-")


def forget(ix: Interaction) -> None:
    """Drop any live code of ``ix`` (e.g. when the user changes the address)."""
    ephemeral().delete(_record_key(ix.id))
