"""The claims covering an e-mail domain, as immutable snapshots cached per process.

Every sign-in asks the domain rules (:func:`idp.domains.rules.explain`) several
times about the same address: on the e-mail page, the code page, the wallet form
and the auto-join. :func:`match` answers from a small cache in this process, keyed
by the e-mail domain, holding everything the rules read from the database: the
covering claims (:class:`ClaimInfo`) with their unit, rule, break-glass addresses,
the SSO connector a ``require_sso`` rule uses, the unit's tree and the sub-units
its ``subunit_map`` names. Nothing but frozen dataclasses of plain values is
cached, never an ORM object, so requests and threads share nothing mutable.

Freshness: a :class:`idp.process_cache.ProcessCache` (entries at most 2 s old,
emptied at once by a commit in this process that changes a :class:`Domain`,
:class:`DomainRule`, :class:`BreakGlassAccount`, :class:`Connector` or :class:`Unit`,
read through while such changes are uncommitted). A miss (no claim) is kept no
longer than a hit. Whether a claim is in force is decided at each lookup against the
current time (:func:`idp.domains.registry.is_effective`, ``IDP_DOMAIN_VALIDITY_DAYS``), never
frozen in the cache; so are the consumer-domain list and the other settings, which
:func:`idp.domains.rules.explain` checks before asking here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from idp.domains import registry as domains
from idp.process_cache import ProcessCache
from idp.store import domains_repo, units_repo
from idp.store.models import BreakGlassAccount, Connector, Domain, DomainRule, Unit
from idp.units import registry as units

WATCHED = (Domain, DomainRule, BreakGlassAccount, Connector, Unit)


@dataclass(frozen=True)
class UnitRef:
    """A unit as the rules report it."""

    id: str
    slug: str
    name: str


@dataclass(frozen=True)
class ConnectorRef:
    """An enabled SSO connector as the rules report it."""

    id: str
    name: str
    kind: str


@dataclass(frozen=True)
class RuleInfo:
    """A claim's rule. ``sso`` is the connector a ``require_sso`` sign-in goes to:
    the rule's chosen connector when it is enabled (a disabled one gives None,
    never another), else the unit's first enabled one; None when ``require_sso``
    is off or no connector is usable. ``break_glass`` is filled only for
    ``require_sso`` rules, ``subunits`` only for ``auto_join`` rules and only with
    mapped units that exist inside the claim's unit."""

    auto_join: bool
    default_role: str
    require_sso: bool
    sso: ConnectorRef | None
    subunit_attribute: str | None
    subunits: tuple[tuple[str, UnitRef], ...]
    break_glass: frozenset[str]

    def subunit(self, value: str) -> UnitRef | None:
        """The sub-unit ``subunit_map`` assigns to ``value``, or None."""
        return next((unit for key, unit in self.subunits if key == value), None)


@dataclass(frozen=True)
class ClaimInfo:
    """A snapshot of one claim with what the domain rules need of it. ``tree`` is
    the unit and every unit below it (only the unit itself unless the rule has
    ``auto_join``: nothing else reads it)."""

    id: str
    name: str
    include_subdomains: bool
    state: str
    verified_method: str | None
    verified_at: datetime | None
    failure_reason: str | None
    unit: UnitRef
    tree: frozenset[str]
    rule: RuleInfo | None

    @property
    def unit_id(self) -> str:
        return self.unit.id

    @property
    def display_name(self) -> str:
        """``acme.example`` or ``*.acme.example``."""
        return domains.display_name(self)


@dataclass(frozen=True)
class ClaimMatch:
    """Like :class:`idp.domains.registry.Match`, with snapshots: the most specific claim in
    force (``effective``) and the most specific one in any state (``nearest``)."""

    effective: ClaimInfo | None
    nearest: ClaimInfo | None


def _unit_ref(unit: Unit) -> UnitRef:
    return UnitRef(id=unit.id, slug=unit.slug, name=unit.name)


def _sso_connector(rule: DomainRule, domain: Domain) -> ConnectorRef | None:
    if rule.sso_connector_id:
        row = domains_repo.connector(rule.sso_connector_id)
        if row is None or not row.enabled:
            return None
    else:
        found = domains_repo.enabled_connectors(domain.unit_id)
        if not found:
            return None
        row = found[0]
    return ConnectorRef(id=row.id, name=row.name, kind=row.kind)


def _rule_info(rule: DomainRule, domain: Domain, tree: frozenset[str]) -> RuleInfo:
    subunits: list[tuple[str, UnitRef]] = []
    if rule.auto_join:
        for value, unit_id in sorted((rule.subunit_map or {}).items()):
            sub = units_repo.by_id(unit_id) if isinstance(unit_id, str) else None
            if sub is not None and sub.id != domain.unit_id and sub.id in tree:
                subunits.append((value, _unit_ref(sub)))
    return RuleInfo(
        auto_join=rule.auto_join,
        default_role=rule.default_role,
        require_sso=rule.require_sso,
        sso=_sso_connector(rule, domain) if rule.require_sso else None,
        subunit_attribute=rule.subunit_attribute,
        subunits=tuple(subunits),
        break_glass=frozenset(b.email for b in domain.break_glass)
        if rule.require_sso
        else frozenset(),
    )


def _snapshot(domain: Domain) -> ClaimInfo:
    rule = domain.rule
    tree = frozenset({domain.unit_id})
    if rule is not None and rule.auto_join:
        tree |= units.descendant_ids(domain.unit_id)
    return ClaimInfo(
        id=domain.id,
        name=domain.name,
        include_subdomains=domain.include_subdomains,
        state=domain.state,
        verified_method=domain.verified_method,
        verified_at=domain.verified_at,
        failure_reason=domain.failure_reason,
        unit=_unit_ref(domain.unit),
        tree=tree,
        rule=None if rule is None else _rule_info(rule, domain, tree),
    )


CACHE: ProcessCache[tuple[ClaimInfo, ...]] = ProcessCache("domain_claims", WATCHED, 2048)


def _load(name: str) -> tuple[ClaimInfo, ...]:
    rows = {d.name: d for d in domains_repo.by_names([name, *domains.parents(name)])}
    return tuple(_snapshot(d) for d in domains.covering(name, rows))


def claims_covering(name: str) -> tuple[ClaimInfo, ...]:
    """The claims covering the normalised domain ``name``, most specific first (see
    :func:`idp.domains.registry.covering`), in any state, from the cache when fresh."""
    return CACHE.get_or_load(name, lambda: _load(name)) or ()


def match(name: str, now: datetime | None = None) -> ClaimMatch:
    """The claims covering ``name`` (see :func:`idp.domains.registry.match`), as snapshots at
    most 2 s old; which one is in force is decided now (or at
    ``now``)."""
    claims = claims_covering(name)
    effective = next((c for c in claims if domains.is_effective(c, now)), None)
    return ClaimMatch(effective=effective, nearest=claims[0] if claims else None)
