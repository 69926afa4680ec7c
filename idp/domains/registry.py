"""Domains a business unit claims, and their proof of control by DNS.

Life of a claim (``docs/companies.md``):

1. :func:`claim` stores the domain as ``pending`` with a random challenge and a
   deadline (``IDP_DOMAIN_VERIFY_DAYS``); the unit publishes the TXT record
   ``_unitgate-challenge.<domain>`` holding the challenge (:class:`Challenge`).
2. :func:`check` asks the DNS server ``IDP_DNS_RESOLVER`` (dnspython): the exact
   value present makes the claim ``verified``; a pending claim past its deadline
   becomes ``failed`` (``deadline``).
3. Verified claims are re-checked (``IDP_DOMAIN_RECHECK_HOURS``); a definitive
   answer without the value (NXDOMAIN, no TXT, another value) makes the claim
   ``failed`` (``lapsed``) at once, so it stops auto-joining. An unreachable
   resolver changes nothing, but a claim whose last successful check is older than
   ``IDP_DOMAIN_VALIDITY_DAYS`` no longer counts (:func:`is_effective`).
4. An operator may verify by hand with a reason (:func:`verify_manually`), which is
   audited; such a claim is not re-checked by DNS and stays until removed.

Refusals: consumer mail domains (:data:`CONSUMER_DOMAINS`, ``IDP_CONSUMER_DOMAINS``)
and their subdomains; a name another unit claimed; a name inside another unit's
wildcard; a wildcard over another unit's names. A claim covers exactly its name;
subdomains only when listed themselves or when the claim is the explicit wildcard
``*.<domain>`` (``include_subdomains``), proven by the TXT record of ``<domain>``.
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

import dns.exception
import dns.name
import dns.resolver

from idp import audit
from idp.crypto.primitives import random_token
from idp.services import settings
from idp.store import domains_repo, unit_of_work
from idp.store.models import Domain, Unit
from idp.units.registry import get as get_unit

CHALLENGE_LABEL = "_unitgate-challenge"
STATES = ("pending", "verified", "failed")

# Free and ISP mail services: anybody can get an address there, so an address
# proves nothing about an employer. Subdomains are refused too.
_CONSUMER_LIST = """
    gmail.com googlemail.com outlook.com outlook.de hotmail.com hotmail.de hotmail.co.uk
    hotmail.fr hotmail.it live.com live.de live.co.uk msn.com passport.com yahoo.com
    yahoo.de yahoo.co.uk yahoo.fr yahoo.it yahoo.es ymail.com rocketmail.com aol.com
    aol.de icloud.com me.com mac.com gmx.de gmx.net gmx.at gmx.ch gmx.com gmx.eu web.de
    t-online.de freenet.de arcor.de online.de 1und1.de posteo.de posteo.net mailbox.org
    protonmail.com protonmail.ch proton.me pm.me tutanota.com tutanota.de tuta.io
    tutamail.com zoho.com zohomail.com yandex.com yandex.ru mail.ru inbox.ru list.ru
    bk.ru fastmail.com fastmail.fm hey.com qq.com 163.com 126.com sina.com aim.com
    mail.com email.com usa.com gmx.us hushmail.com duck.com
"""
CONSUMER_DOMAINS: frozenset[str] = frozenset(_CONSUMER_LIST.split())


class DomainError(ValueError):
    """A domain operation is refused; ``code`` says why: ``invalid_domain``,
    ``consumer_domain``, ``reserved_domain``, ``domain_taken``, ``not_found``,
    ``reason_required``, ..."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _now() -> datetime:
    return datetime.now(UTC)


def normalize(name: Any) -> str:
    """``name`` as a lower-case ASCII (IDNA/punycode) host name without trailing dot:
    at least two labels of letters, digits and inner hyphens, at most 253
    characters. Raises :class:`DomainError` ``invalid_domain``."""
    if not isinstance(name, str):
        raise DomainError("invalid_domain", "domain: must be text")
    return _normalized(name)


@functools.lru_cache(maxsize=4096)
def _normalized(name: str) -> str:
    """:func:`normalize` of a string (a pure function: every sign-in step asks it for
    the same few company domains, and the IDNA conversion is the costly part; invalid
    names raise and are not cached)."""
    text = name.strip().rstrip(".").lower()
    if not text or len(text) > 253 or any(c.isspace() for c in text):
        raise DomainError("invalid_domain", f"not a domain name: {name!r}")
    try:
        ascii_name = dns.name.from_unicode(text).to_text(omit_final_dot=True).lower()
    except (dns.exception.DNSException, UnicodeError, ValueError) as exc:
        raise DomainError("invalid_domain", f"not a domain name: {name!r}") from exc
    labels = ascii_name.split(".")
    if len(labels) < 2 or len(ascii_name) > 253:
        raise DomainError("invalid_domain", f"not a registrable domain name: {name!r}")
    for label in labels:
        ok = (
            0 < len(label) <= 63
            and all(c.isascii() and (c.isalnum() or c == "-") for c in label)
            and not label.startswith("-")
            and not label.endswith("-")
        )
        if not ok:
            raise DomainError("invalid_domain", f"not a domain name: {name!r}")
    if labels[-1].isdigit():
        raise DomainError("invalid_domain", f"an IP address is not a domain: {name!r}")
    return ascii_name


def parse_claim(text: Any) -> tuple[str, bool]:
    """``"acme.example"`` -> (``acme.example``, False); the explicit wildcard
    ``"*.acme.example"`` -> (``acme.example``, True)."""
    if isinstance(text, str) and text.strip().startswith("*."):
        return normalize(text.strip()[2:]), True
    return normalize(text), False


def email_domain(email: Any) -> str | None:
    """The normalised domain of an e-mail address, or None when it has none."""
    if not isinstance(email, str) or "@" not in email or len(email) > 320:
        return None
    local, _, domain = email.strip().rpartition("@")
    if not local:
        return None
    try:
        return normalize(domain)
    except DomainError:
        return None


def parents(name: str) -> list[str]:
    """``a.b.example`` -> [``b.example``]: the enclosing names with at least two labels."""
    labels = name.split(".")
    return [".".join(labels[i:]) for i in range(1, len(labels) - 1)]


def consumer_domains() -> frozenset[str]:
    """The built-in consumer list plus ``IDP_CONSUMER_DOMAINS``."""
    extra = {d.strip().lower() for d in settings().consumer_domains.split(",") if d.strip()}
    return CONSUMER_DOMAINS | extra


def is_consumer(name: str) -> bool:
    """True when ``name`` or any enclosing domain is a consumer mail domain."""
    listed = consumer_domains()
    return name in listed or any(p in listed for p in parents(name))


def challenge_name(name: str) -> str:
    """The DNS name that must hold the challenge: ``_unitgate-challenge.<name>``."""
    return f"{CHALLENGE_LABEL}.{name}"


class ClaimLike(Protocol):
    """What the rules below read of a claim: a :class:`Domain` row or a cached
    snapshot (:class:`idp.domains.lookup.ClaimInfo`)."""

    @property
    def name(self) -> str: ...
    @property
    def include_subdomains(self) -> bool: ...
    @property
    def state(self) -> str: ...
    @property
    def verified_method(self) -> str | None: ...
    @property
    def verified_at(self) -> datetime | None: ...


_Claim = TypeVar("_Claim", bound=ClaimLike)


def display_name(domain: ClaimLike) -> str:
    """``acme.example`` or ``*.acme.example`` for a wildcard claim."""
    return ("*." if domain.include_subdomains else "") + domain.name


@dataclass(frozen=True)
class Challenge:
    """The TXT record the unit must publish to prove control of the domain."""

    domain: str
    record_name: str
    record_type: str
    value: str
    state: str
    deadline_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "record_name": self.record_name,
            "record_type": self.record_type,
            "value": self.value,
            "state": self.state,
            "deadline_at": self.deadline_at.isoformat(),
        }


def challenge_of(domain: Domain) -> Challenge:
    """The record to publish for ``domain``."""
    return Challenge(
        domain=display_name(domain),
        record_name=challenge_name(domain.name),
        record_type="TXT",
        value=domain.challenge,
        state=domain.state,
        deadline_at=domain.deadline_at,
    )


def _refuse_conflicts(name: str, wildcard: bool, unit: Unit) -> None:
    """A domain belongs to one unit: refuse names other units own or cover."""
    for other in domains_repo.by_names(parents(name)):
        if other.include_subdomains and other.unit_id != unit.id:
            raise DomainError(
                "domain_taken", f"{name} is inside *.{other.name}, claimed by another unit"
            )
    if wildcard:
        for other in domains_repo.under(name):
            if other.unit_id != unit.id:
                raise DomainError(
                    "domain_taken", f"*.{name} would cover {other.name}, claimed by another unit"
                )


RESERVED_TLD = "invalid"
"""Never deliverable (RFC 6761 §6.4): the addresses of pending records' placeholders
(``idp.provisioning.service.placeholder_email``) and of deleted accounts live under it, so no
company may own it (or it could provision into those accounts)."""


def claim(unit_ref: str, text: str, actor: str = "system") -> Domain:
    """Claim ``text`` (``acme.example`` or ``*.acme.example``) for the unit and return
    the claim; its :func:`challenge_of` says which TXT record to publish.

    Idempotent for the same unit: a pending claim is returned unchanged, a failed one
    restarts with a new challenge and deadline, a verified one stays verified (a
    wildcard flag given later widens it: the apex record already proves control).
    Raises :class:`DomainError` for invalid, consumer or taken names and
    :class:`idp.units.registry.UnitError` for an unknown unit.
    """
    name, wildcard = parse_claim(text)
    unit = get_unit(unit_ref)
    if name.rsplit(".", 1)[-1] == RESERVED_TLD:
        raise DomainError(
            "reserved_domain",
            f"{name} is under .{RESERVED_TLD} (RFC 6761), which Unitgate uses for "
            "placeholder and deleted addresses; it cannot belong to a company",
        )
    if is_consumer(name):
        raise DomainError(
            "consumer_domain", f"{name} is a consumer mail domain and cannot belong to a company"
        )
    existing = domains_repo.by_name(name)
    if existing is not None and existing.unit_id != unit.id:
        raise DomainError("domain_taken", f"{name} is claimed by another unit")
    _refuse_conflicts(name, wildcard, unit)
    now = _now()
    deadline = now + timedelta(days=settings().domain_verify_days)
    events = []
    if existing is None:
        row = Domain(
            unit_id=unit.id,
            name=name,
            include_subdomains=wildcard,
            state="pending",
            challenge=random_token(24),
            deadline_at=deadline,
            created_at=now,
        )
        events.append(
            audit.event(
                actor, "domain.claim", name, {"unit": unit.slug, "wildcard": wildcard}, unit.id
            )
        )
    else:
        row = existing
        changed = False
        if existing.state == "failed":
            row.state = "pending"
            row.challenge = random_token(24)
            row.deadline_at = deadline
            row.failure_reason = None
            row.verified_method = None
            row.verified_at = None
            row.verification_note = None
            events.append(audit.event(actor, "domain.reclaim", name, {"unit": unit.slug}, unit.id))
            changed = True
        if wildcard and not existing.include_subdomains:
            row.include_subdomains = True
            events.append(audit.event(actor, "domain.wildcard", name, {"unit": unit.slug}, unit.id))
            changed = True
        if not changed:
            return row
    try:
        unit_of_work.save(row, *events)
    except unit_of_work.Conflict as exc:
        raise DomainError("domain_taken", f"{name} is claimed by another unit") from exc
    return row


def parse_resolver(text: str) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]:port`` or a bare IPv6 address -> (ip, port).
    A host name is resolved once to an address (dnspython wants addresses)."""
    text = text.strip()
    port = 53
    host = text
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest.startswith(":"):
            port = int(rest[1:])
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        port = int(port_text)
    if not 0 < port < 65536:
        raise ValueError(f"IDP_DNS_RESOLVER: bad port in {text!r}")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        # an IPv4 or IPv6 socket address: its first item is the address text
        host = str(socket.getaddrinfo(host, port, proto=socket.IPPROTO_UDP)[0][4][0])
    return host, port


def _resolver() -> dns.resolver.Resolver:
    cfg = settings()
    if cfg.dns_resolver:
        host, port = parse_resolver(cfg.dns_resolver)
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [host]
        resolver.port = port
    else:
        resolver = dns.resolver.Resolver()
    resolver.lifetime = cfg.dns_timeout_seconds
    resolver.timeout = cfg.dns_timeout_seconds
    resolver.cache = None
    return resolver


@dataclass(frozen=True)
class Lookup:
    """What DNS said about a challenge record.

    ``outcome``: ``match`` (the value is there), ``absent`` (NXDOMAIN or no TXT),
    ``mismatch`` (TXT present without the value) - all definitive - or
    ``unreachable`` (timeout, SERVFAIL, refused: nothing is concluded).
    """

    outcome: str
    detail: str

    @property
    def definitive(self) -> bool:
        return self.outcome != "unreachable"


def lookup(name: str, expected: str) -> Lookup:
    """Ask the configured resolver for the TXT record ``_unitgate-challenge.<name>``
    and compare each value (its character-strings joined, RFC 7208 §3.3 style) with
    ``expected`` in constant time. Never raises for DNS trouble."""
    qname = challenge_name(name)
    try:
        answer = _resolver().resolve(qname, "TXT", search=False, raise_on_no_answer=True)
    except dns.resolver.NXDOMAIN:
        return Lookup("absent", f"{qname}: no such name")
    except dns.resolver.NoAnswer:
        return Lookup("absent", f"{qname}: no TXT record")
    except dns.resolver.LifetimeTimeout:
        return Lookup("unreachable", f"{qname}: DNS timeout")
    except dns.resolver.NoNameservers:
        return Lookup("unreachable", f"{qname}: DNS server failure")
    except (dns.exception.DNSException, OSError, ValueError) as exc:
        return Lookup("unreachable", f"{qname}: DNS error {type(exc).__name__}")
    want = expected.encode()
    values = [b"".join(rdata.strings) for rdata in answer]
    if any(hmac.compare_digest(v, want) for v in values):
        return Lookup("match", f"{qname}: challenge found")
    return Lookup("mismatch", f"{qname}: {len(values)} TXT value(s), none is the challenge")


@dataclass(frozen=True)
class CheckReport:
    """The result of checking one claim: its state before and after, and why."""

    domain: str
    unit_id: str
    before: str
    state: str
    outcome: str
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "unit_id": self.unit_id,
            "before": self.before,
            "state": self.state,
            "outcome": self.outcome,
            "detail": self.detail,
        }


def is_effective(domain: ClaimLike, now: datetime | None = None) -> bool:
    """True when the claim counts for auto-join and SSO routing now: verified, and
    either verified by hand or successfully checked within ``IDP_DOMAIN_VALIDITY_DAYS``."""
    if domain.state != "verified":
        return False
    if domain.verified_method == "manual":
        return True
    if domain.verified_at is None:
        return False
    validity = timedelta(days=settings().domain_validity_days)
    return (now or _now()) < domain.verified_at + validity


def _due(domain: Domain, now: datetime) -> bool:
    if domain.state == "pending":
        return True
    if domain.state != "verified" or domain.verified_method == "manual":
        return False
    if domain.last_checked_at is None:
        return True
    return now - domain.last_checked_at >= timedelta(hours=settings().domain_recheck_hours)


def check_one(domain: Domain, actor: str = "system", now: datetime | None = None) -> CheckReport:
    """Check one claim against DNS now and record the result (one transaction).

    pending: match -> verified; past the deadline -> failed (``deadline``).
    verified (dns): match -> stays, validity renewed; absent/mismatch -> failed
    (``lapsed``); unreachable -> unchanged. failed: match -> verified again (the
    challenge is still proof of control). Manually verified claims are reported
    unchanged without a lookup."""
    now = now or _now()
    before = domain.state
    if domain.state == "verified" and domain.verified_method == "manual":
        return CheckReport(
            display_name(domain), domain.unit_id, before, before, "manual", "verified by hand"
        )
    result = lookup(domain.name, domain.challenge)
    events = []
    domain.last_checked_at = now
    domain.last_check_result = result.detail[:200]
    if result.outcome == "match":
        domain.state = "verified"
        domain.verified_method = "dns"
        domain.verified_at = now
        domain.failure_reason = None
        if before != "verified":
            events.append(audit.event(
                actor, "domain.verified", domain.name, {"method": "dns"}, domain.unit_id
            ))
    elif before == "pending" and now >= domain.deadline_at:
        domain.state = "failed"
        domain.failure_reason = "deadline"
        events.append(audit.event(
            actor, "domain.failed", domain.name, {"reason": "deadline"}, domain.unit_id
        ))
    elif before == "verified" and result.definitive:
        domain.state = "failed"
        domain.failure_reason = "lapsed"
        events.append(
            audit.event(
                actor, "domain.lapsed", domain.name, {"outcome": result.outcome}, domain.unit_id
            )
        )
    unit_of_work.save(domain, *events)
    return CheckReport(
        display_name(domain), domain.unit_id, before, domain.state, result.outcome, result.detail
    )


def check(name: str | None = None, force: bool = False, actor: str = "system") -> list[CheckReport]:
    """Check one claim (``name``, whatever its state) or every claim that is due:
    all pending ones, and verified ones last checked more than
    ``IDP_DOMAIN_RECHECK_HOURS`` ago (every verified one with ``force``). Run it
    periodically (cron, systemd timer) so lapsed domains stop auto-joining."""
    if name is not None:
        return [check_one(get(name), actor)]
    now = _now()
    reports = []
    for domain in domains_repo.in_states(("pending", "verified")):
        if domain.state == "verified" and domain.verified_method == "manual":
            continue
        if force or _due(domain, now):
            reports.append(check_one(domain, actor, now))
    return reports


def get(text: str) -> Domain:
    """The claim of ``text`` (``acme.example`` or ``*.acme.example``); :class:`DomainError`
    ``not_found`` otherwise."""
    name, _ = parse_claim(text)
    row = domains_repo.by_name(name)
    if row is None:
        raise DomainError("not_found", f"no claim of {name}")
    return row


def verify_manually(text: str, reason: str, actor: str) -> Domain:
    """Mark a claim verified without DNS, for an operator who checked ownership
    another way. ``reason`` (required, at most 500 characters) and ``actor`` go to
    the audit log and the claim. Consumer domains can never be verified."""
    if not isinstance(reason, str) or not reason.strip():
        raise DomainError("reason_required", "manual verification needs --reason")
    clean = " ".join(reason.split())[:500]
    domain = get(text)
    if is_consumer(domain.name):
        raise DomainError("consumer_domain", f"{domain.name} is a consumer mail domain")
    domain.state = "verified"
    domain.verified_method = "manual"
    domain.verified_at = _now()
    domain.verification_note = clean
    domain.failure_reason = None
    event = audit.event(
        actor, "domain.verified", domain.name, {"method": "manual", "reason": clean},
        domain.unit_id,
    )
    unit_of_work.save(domain, event)
    return domain


def set_subdomains(text: str, include: bool, actor: str = "system") -> Domain:
    """Widen a claim to ``*.<domain>`` or narrow it back to the name alone."""
    domain = get(text)
    if domain.include_subdomains != include:
        if include:
            _refuse_conflicts(domain.name, True, domain.unit)
        domain.include_subdomains = include
        event = audit.event(
            actor, "domain.wildcard", domain.name, {"include_subdomains": include},
            domain.unit_id,
        )
        unit_of_work.save(domain, event)
    return domain


def remove(text: str, actor: str = "system") -> bool:
    """Delete a claim with its rules; True when it existed. Memberships that came
    from it stay (they are never derived from the domain afterwards)."""
    try:
        domain = get(text)
    except DomainError:
        return False
    event = audit.event(actor, "domain.remove", domain.name, {"unit_id": domain.unit_id})
    unit_of_work.remove(domain, event)
    return True


def list_claims(unit_ref: str | None = None) -> list[Domain]:
    """Every claim, or the claims of one unit (id or slug), ordered by name."""
    if unit_ref is None:
        return domains_repo.all_domains()
    return domains_repo.all_domains(get_unit(unit_ref).id)


@dataclass(frozen=True)
class Match:
    """Which claims cover an e-mail domain: the most specific one that is in force
    (``effective``), and the most specific one in any state (``nearest``)."""

    effective: Domain | None
    nearest: Domain | None


def match(name: str, now: datetime | None = None) -> Match:
    """The claims covering ``name``: an exact claim first, then wildcard claims of
    enclosing domains, most specific first. Only claims in force (verified, fresh)
    are ``effective``. Reads the database each time and returns ORM rows; the
    sign-in uses the cached snapshots of :func:`idp.domains.lookup.match` instead."""
    ordered = covering(name, {d.name: d for d in domains_repo.by_names([name, *parents(name)])})
    effective = next((d for d in ordered if is_effective(d, now)), None)
    return Match(effective=effective, nearest=ordered[0] if ordered else None)


def covering(name: str, claims: Mapping[str, _Claim]) -> list[_Claim]:
    """Of ``claims`` (by name: those of ``name`` and its :func:`parents`), the ones
    covering ``name``, most specific first: the exact claim, then the wildcard claims
    of enclosing domains."""
    ordered = [claims[name]] if name in claims else []
    for parent in parents(name):
        row = claims.get(parent)
        if row is not None and row.include_subdomains:
            ordered.append(row)
    return ordered


def describe(domain: Domain, now: datetime | None = None) -> dict[str, Any]:
    """A claim as plain data for the CLI (never more than the public challenge)."""
    unit = domain.unit
    rule = domain.rule
    return {
        "domain": display_name(domain),
        "name": domain.name,
        "include_subdomains": domain.include_subdomains,
        "unit": unit.slug if unit else None,
        "unit_id": domain.unit_id,
        "state": domain.state,
        "in_force": is_effective(domain, now),
        "failure_reason": domain.failure_reason,
        "verified_method": domain.verified_method,
        "verified_at": domain.verified_at.isoformat() if domain.verified_at else None,
        "verification_note": domain.verification_note,
        "last_checked_at": domain.last_checked_at.isoformat() if domain.last_checked_at else None,
        "last_check_result": domain.last_check_result,
        "deadline_at": domain.deadline_at.isoformat(),
        "record_name": challenge_name(domain.name),
        "record_type": "TXT",
        "record_value": domain.challenge,
        "rules": None
        if rule is None
        else {
            "auto_join": rule.auto_join,
            "default_role": rule.default_role,
            "require_sso": rule.require_sso,
            "sso_connector_id": rule.sso_connector_id,
            "subunit_attribute": rule.subunit_attribute,
            "subunit_map": dict(rule.subunit_map or {}),
        },
        "break_glass": [b.email for b in domain.break_glass],
    }
