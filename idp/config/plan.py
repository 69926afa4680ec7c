"""The plan of ``idp apply``: compare a configuration file with the database.

:class:`Planner` only reads. It lists every :class:`Change` (create, update, delete,
with the fields it changes) in execution order: units (parents first), profile
fields, connectors, domains, clients (each followed by its logout channels), SAML
service providers, then domain rules (which may name connectors and sub-units created
above), and last the removal of connectors (after the rules stopped using them). Each
change carries the call that makes it through the domain services
(:mod:`idp.units.registry`, :mod:`idp.domains.registry`, :mod:`idp.domains.rules`,
:mod:`idp.config.connectors`, :mod:`idp.release.clients`,
:mod:`idp.interaction.rp_logout`, the SAML registry through :mod:`idp.config.saml_sps`).
Problems with the file are collected in :attr:`Planner.errors` so they can all be
reported at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from idp.config import connectors as config_connectors
from idp.config import saml_sps as config_sps
from idp.config.schema import ClientSpec, ConfigFile, RulesSpec, SamlSpSpec, UnitSpec
from idp.domains import registry as domains
from idp.domains import rules as domain_rules
from idp.factors import fresh_code, passkeys, passwords, totp
from idp.interaction import impersonation, rp_logout
from idp.store import connectors_repo, domains_repo, units_repo
from idp.units import field_types
from idp.units import registry as units

CLIENT_FIELDS = (
    "redirect_uris", "post_logout_redirect_uris", "scope", "grant_types",
    "token_endpoint_auth_method", "id_token_signed_response_alg", "jwks", "jwks_uri",
    "required_claims", "require_pushed_authorization_requests", "dpop_bound_access_tokens",
)
# A client's logout channels (idp.interaction.rp_logout): a change of their own,
# after the client's; a URI key written as null or "" removes that channel.
LOGOUT_URI_FIELDS = ("backchannel_logout_uri", "frontchannel_logout_uri")
LOGOUT_FIELDS = (
    "backchannel_logout_uri", "backchannel_logout_session_required",
    "frontchannel_logout_uri", "frontchannel_logout_session_required",
)


@dataclass
class Change:
    """One step of a plan."""

    action: str  # create | update | delete
    kind: str  # unit | profile_field | connector | domain | rules | client | client_logout
    #          | saml_sp
    key: str
    fields: dict[str, Any] = field(default_factory=dict)
    run: Callable[[], Any] | None = field(default=None, repr=False, compare=False)
    unsupported: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {"action": self.action, "kind": self.kind, "key": self.key, "fields": self.fields}
        if self.unsupported:
            out["unsupported"] = self.unsupported
        return out

    def text(self) -> str:
        mark = "!" if self.unsupported else {"create": "+", "update": "~", "delete": "-"}[
            self.action
        ]
        parts = []
        for name, value in self.fields.items():
            if isinstance(value, dict) and set(value) == {"from", "to"}:
                parts.append(f"{name}: {value['from']!r} -> {value['to']!r}")
            else:
                parts.append(f"{name}={value!r}")
        detail = f" ({', '.join(parts)})" if parts else ""
        note = f"  [{self.unsupported}]" if self.unsupported else ""
        return f"{mark} {self.kind} {self.key}{detail}{note}"


def _diff(old: Any, new: Any) -> dict[str, Any]:
    return {"from": old, "to": new}


class Planner:
    """Compares the file with the database; read-only."""

    def __init__(self, cfg: ConfigFile, actor: str) -> None:
        self.cfg = cfg
        self.actor = actor
        self.errors: list[str] = []
        self.warnings: list[str] = []
        self.main: list[Change] = []
        self.rules: list[Change] = []
        self.late: list[Change] = []
        self.specs: dict[str, UnitSpec] = {}
        self.claimed: dict[str, str] = {}  # domain name -> unit slug in the file

    # -- units -------------------------------------------------------------------
    def _parent_slug(self, slug: str) -> str | None:
        spec = self.specs.get(slug)
        if spec is not None and spec.given("parent"):
            return spec.parent or None
        unit = units_repo.by_slug(slug)
        if unit is None or not unit.parent_id:
            return None
        parent = units_repo.by_id(unit.parent_id)
        return parent.slug if parent else None

    def _unit_order(self) -> list[UnitSpec]:
        for spec in self.cfg.units:
            try:
                units.validate_slug(spec.slug)
            except units.UnitError as exc:
                self.errors.append(f"unit {spec.slug!r}: {exc}")
                continue
            if spec.slug in self.specs:
                self.errors.append(f"unit {spec.slug!r} appears twice")
            self.specs[spec.slug] = spec
        order: list[UnitSpec] = []
        done: set[str] = set()
        for slug in self.specs:
            chain: list[str] = []
            current: str | None = slug
            while current is not None and current not in done:
                if current in chain:
                    self.errors.append(f"units {' -> '.join([*chain, current])} form a cycle")
                    break
                chain.append(current)
                parent = self._parent_slug(current)
                if parent is not None and parent not in self.specs and not units_repo.by_slug(
                    parent
                ):
                    self.errors.append(f"unit {current!r}: parent {parent!r} does not exist")
                    break
                current = parent
            for item in reversed(chain):
                if item in self.specs and item not in done:
                    done.add(item)
                    order.append(self.specs[item])
        return order

    def _roles(self, spec: UnitSpec) -> tuple[str, ...]:
        if spec.permission_groups is not None:
            return units.BASE_ROLES + tuple(spec.permission_groups)
        unit = units_repo.by_slug(spec.slug)
        return units.roles_for(unit) if unit else units.BASE_ROLES

    def unit(self, spec: UnitSpec) -> None:
        existing = units_repo.by_slug(spec.slug)
        try:
            if spec.name is not None:
                units.validate_name(spec.name)
            if spec.permission_groups is not None:
                units.validate_groups(spec.permission_groups)
        except units.UnitError as exc:
            self.errors.append(f"unit {spec.slug!r}: {exc}")
            return
        if existing is None:
            if not spec.name:
                self.errors.append(f"unit {spec.slug!r}: name is required to create it")
                return
            fields: dict[str, Any] = {"name": spec.name, "type": spec.type or "company"}
            if spec.parent:
                fields["parent"] = spec.parent
            if spec.permission_groups:
                fields["permission_groups"] = spec.permission_groups
            run = partial(
                units.create, spec.name, spec.parent or None, spec.type or "company",
                spec.slug, spec.permission_groups or [], self.actor,
            )
            self.main.append(Change("create", "unit", spec.slug, fields, run))
            self._policy(spec, current=False)
            self._fresh_code(spec, current=False)
            self._passwords(spec, current=False)
            self._notify_impersonation(spec, current=True)
            self._passkey_fresh(spec, current=False)
            return
        kwargs: dict[str, Any] = {}
        fields = {}
        if spec.name is not None and spec.name != existing.name:
            kwargs["name"], fields["name"] = spec.name, _diff(existing.name, spec.name)
        if spec.type is not None and spec.type != existing.kind:
            kwargs["kind"], fields["type"] = spec.type, _diff(existing.kind, spec.type)
        if spec.given("parent"):
            current = self._parent_slug_db(existing.parent_id)
            if (spec.parent or None) != current:
                kwargs["parent"] = spec.parent or None
                fields["parent"] = _diff(current, spec.parent or None)
        groups = units.group_names(existing)
        if spec.permission_groups is not None and set(spec.permission_groups) != set(groups):
            kwargs["permission_groups"] = spec.permission_groups
            fields["permission_groups"] = _diff(groups, spec.permission_groups)
        if kwargs:
            run = partial(units.update, spec.slug, actor=self.actor, **kwargs)
            self.main.append(Change("update", "unit", spec.slug, fields, run))
        self._policy(spec, current=bool(existing.require_totp))
        self._fresh_code(spec, current=bool(existing.fresh_code_every_sign_in))
        self._passwords(spec, current=bool(existing.passwords_allowed))
        self._notify_impersonation(spec, current=bool(existing.notify_impersonation))
        self._passkey_fresh(spec, current=bool(existing.passkey_counts_as_fresh))

    def _policy(self, spec: UnitSpec, current: bool) -> None:
        """The unit's sign-in policy (``require_totp``), after the unit exists."""
        if spec.require_totp is None or spec.require_totp == current:
            return
        run = partial(totp.set_unit_policy, spec.slug, spec.require_totp, self.actor)
        fields = {"require_totp": _diff(current, spec.require_totp)}
        self.main.append(Change("update", "unit_policy", spec.slug, fields, run))

    def _fresh_code(self, spec: UnitSpec, current: bool) -> None:
        """The unit's ``fresh_code_every_sign_in`` policy, after the unit exists."""
        wanted = spec.fresh_code_every_sign_in
        if wanted is None or wanted == current:
            return
        run = partial(fresh_code.set_unit_policy, spec.slug, wanted, self.actor)
        fields = {"fresh_code_every_sign_in": _diff(current, wanted)}
        self.main.append(Change("update", "unit_policy", spec.slug, fields, run))

    def _passwords(self, spec: UnitSpec, current: bool) -> None:
        """The unit's ``passwords_allowed`` policy, after the unit exists."""
        wanted = spec.passwords_allowed
        if wanted is None or wanted == current:
            return
        run = partial(passwords.set_unit_policy, spec.slug, wanted, self.actor)
        fields = {"passwords_allowed": _diff(current, wanted)}
        self.main.append(Change("update", "unit_policy", spec.slug, fields, run))

    def _notify_impersonation(self, spec: UnitSpec, current: bool) -> None:
        """The unit's ``notify_impersonation`` policy (default on), after the unit exists."""
        wanted = spec.notify_impersonation
        if wanted is None or wanted == current:
            return
        run = partial(impersonation.set_notify_policy, spec.slug, wanted, self.actor)
        fields = {"notify_impersonation": _diff(current, wanted)}
        self.main.append(Change("update", "unit_policy", spec.slug, fields, run))

    def _passkey_fresh(self, spec: UnitSpec, current: bool) -> None:
        """The unit's ``passkey_counts_as_fresh`` policy, after the unit exists."""
        wanted = spec.passkey_counts_as_fresh
        if wanted is None or wanted == current:
            return
        run = partial(passkeys.set_unit_policy, spec.slug, wanted, self.actor)
        fields = {"passkey_counts_as_fresh": _diff(current, wanted)}
        self.main.append(Change("update", "unit_policy", spec.slug, fields, run))

    @staticmethod
    def _parent_slug_db(parent_id: str | None) -> str | None:
        parent = units_repo.by_id(parent_id) if parent_id else None
        return parent.slug if parent else None

    # -- profile fields ------------------------------------------------------------
    def profile_fields(self, spec: UnitSpec) -> None:
        if not spec.given("profile_fields"):
            return
        existing = units_repo.by_slug(spec.slug)
        current = {f.name: f for f in units_repo.fields(existing.id)} if existing else {}
        seen: set[str] = set()
        for position, f in enumerate(spec.profile_fields or []):
            key = f"{spec.slug}/{f.name}"
            try:
                units.validate_field_name(f.name)
            except units.UnitError as exc:
                self.errors.append(f"field {key}: {exc}")
                continue
            if f.name in seen:
                self.errors.append(f"field {key} appears twice")
            seen.add(f.name)
            label = f.label or f.name
            try:
                typed = field_types.definition(
                    f.type, f.currency, f.choices or [], f.labels or {}, f.help or {}, f.set_by
                )
            except field_types.DefinitionError as exc:
                self.errors.append(f"field {key}: {exc}")
                continue
            run: Callable[[], Any] = partial(
                units.add_field, spec.slug, f.name, label, f.required, position, self.actor,
                type_=typed.type, currency=typed.currency, choices=typed.choices,
                labels=typed.labels, help_=typed.help, set_by=typed.set_by,
            )
            row = current.get(f.name)
            if row is None:
                fields = {"label": label, "required": f.required, "type": typed.type}
                self.main.append(Change("create", "profile_field", key, fields, run))
                continue
            fields = {}
            for name, old, new in (
                ("label", row.label, label), ("required", row.required, f.required),
                ("position", row.position, position), ("type", row.type, typed.type),
                ("currency", row.currency, typed.currency),
                ("choices", list(row.choices or []), typed.choices),
                ("labels", dict(row.labels or {}), typed.labels),
                ("help", dict(row.help or {}), typed.help),
                ("set_by", row.set_by, typed.set_by),
            ):
                if old != new:
                    fields[name] = _diff(old, new)
            if fields:
                self.main.append(Change("update", "profile_field", key, fields, run))
        for name in sorted(set(current) - seen):
            run = partial(units.remove_field, spec.slug, name, self.actor)
            self.main.append(Change("delete", "profile_field", f"{spec.slug}/{name}", {}, run))

    # -- connectors ----------------------------------------------------------------
    def connectors(self, spec: UnitSpec) -> None:
        if not spec.given("connectors"):
            return
        existing = units_repo.by_slug(spec.slug)
        rows = connectors_repo.list_all(existing.id) if existing else []
        current: dict[str, Any] = {}
        for listed in rows:
            if listed.name in current:
                self.errors.append(
                    f"unit {spec.slug!r} has two connectors named {listed.name!r}; rename one"
                )
            current[listed.name] = listed
        seen: set[str] = set()
        for c in spec.connectors or []:
            key = f"{spec.slug}/{c.name}"
            if c.name in seen:
                self.errors.append(f"connector {key} appears twice")
            seen.add(c.name)
            try:
                row = current.get(c.name)
                if row is None:
                    config_connectors.secret_from_env(c)
                    fields = {"kind": c.kind}
                    run: Callable[[], Any] = partial(config_connectors.create, spec.slug, c,
                                                    self.actor)
                    self.main.append(Change("create", "connector", key, fields, run))
                    continue
                diff = config_connectors.differences(row, c)
            except (config_connectors.ConnectorPlanError, ValueError) as exc:
                self.errors.append(f"connector {key}: {exc}")
                continue
            if diff:
                run = partial(config_connectors.update, row.id, c, self.actor)
                self.main.append(Change("update", "connector", key, diff, run))
        for name in sorted(set(current) - seen):
            run = partial(config_connectors.delete, current[name].id, self.actor)
            self.late.append(Change("delete", "connector", f"{spec.slug}/{name}", {}, run))

    # -- domains and rules -----------------------------------------------------------
    def domains(self, spec: UnitSpec) -> None:
        if not spec.given("domains"):
            return
        existing = units_repo.by_slug(spec.slug)
        current = {d.name: d for d in domains_repo.all_domains(existing.id)} if existing else {}
        seen: set[str] = set()
        for d in spec.domains or []:
            try:
                name, wildcard = domains.parse_claim(d.name)
            except domains.DomainError as exc:
                self.errors.append(f"domain {d.name!r}: {exc}")
                continue
            if name in self.claimed:
                self.errors.append(f"domain {name} is listed twice ({self.claimed[name]})")
                continue
            self.claimed[name] = spec.slug
            seen.add(name)
            if domains.is_consumer(name):
                self.errors.append(f"domain {name} is a consumer mail domain")
                continue
            row = current.get(name)
            if row is None:
                owner = domains_repo.by_name(name)
                if owner is not None:
                    self.errors.append(f"domain {name} is claimed by another unit")
                    continue
                fields = {"unit": spec.slug, "include_subdomains": wildcard}
                run: Callable[[], Any] = partial(domains.claim, spec.slug, d.name, self.actor)
                self.main.append(Change("create", "domain", name, fields, run))
            elif row.include_subdomains != wildcard:
                run = partial(domains.set_subdomains, name, wildcard, self.actor)
                fields = {"include_subdomains": _diff(row.include_subdomains, wildcard)}
                self.main.append(Change("update", "domain", name, fields, run))
            if d.rules is not None:
                self.domain_rules(spec, d.rules, name, row)
        for name in sorted(set(current) - seen):
            run = partial(domains.remove, name, self.actor)
            self.main.append(Change("delete", "domain", name, {}, run))

    def _connector_known(self, spec: UnitSpec, name: str) -> bool:
        slug: str | None = spec.slug
        seen: set[str] = set()
        while slug is not None and slug not in seen:
            seen.add(slug)
            unit_spec = self.specs.get(slug)
            if unit_spec is not None and unit_spec.given("connectors"):
                if any(c.name == name for c in unit_spec.connectors or []):
                    return True
            else:
                unit = units_repo.by_slug(slug)
                if unit and any(c.name == name for c in connectors_repo.list_all(unit.id)):
                    return True
            slug = self._parent_slug(slug)
        return False

    def domain_rules(self, spec: UnitSpec, rules: RulesSpec, name: str, row: Any) -> None:
        current = domain_rules.rules_of(row)
        if row is not None and row.rule is not None and row.rule.sso_connector_id:
            conn = connectors_repo.get(row.rule.sso_connector_id)
            current["connector"] = conn.name if conn else None
        else:
            current["connector"] = None
        kwargs: dict[str, Any] = {}
        fields: dict[str, Any] = {}
        for key in ("auto_join", "default_role", "require_sso", "subunit_attribute"):
            value = getattr(rules, key)
            if key == "subunit_attribute":
                value = value or None
            elif value is None:
                continue
            if rules.given(key) and value != current[key]:
                kwargs[key] = value
                fields[key] = _diff(current[key], value)
        if rules.default_role is not None and rules.default_role not in self._roles(spec):
            self.errors.append(f"rules of {name}: role {rules.default_role!r} is not defined")
        if rules.given("connector") and rules.connector != current["connector"]:
            if rules.connector and not self._connector_known(spec, rules.connector):
                self.errors.append(f"rules of {name}: no connector named {rules.connector!r}")
            kwargs["connector"] = rules.connector
            fields["connector"] = _diff(current["connector"], rules.connector)
        if rules.subunits is not None and rules.subunits != current["subunits"]:
            for target in rules.subunits.values():
                if target not in self.specs and units_repo.by_slug(target) is None:
                    self.errors.append(f"rules of {name}: no unit {target!r}")
            kwargs["subunit_map"] = rules.subunits
            fields["subunits"] = _diff(current["subunits"], rules.subunits)
        if rules.break_glass is not None:
            wanted = sorted({e.strip().lower() for e in rules.break_glass})
            if wanted != current["break_glass"]:
                kwargs["break_glass"] = wanted
                fields["break_glass"] = _diff(current["break_glass"], wanted)
        if kwargs:
            run = partial(_run_rules, name, spec.slug, self.actor, kwargs)
            self.rules.append(Change("update", "rules", name, fields, run))

    # -- clients --------------------------------------------------------------------
    def client(self, spec: ClientSpec) -> None:
        from idp.release import clients

        row = clients.get(spec.client_id) if spec.client_id else None
        if row is None:
            same = [c for c in clients.list_all() if c.name == spec.name]
            if len(same) > 1:
                self.errors.append(f"several clients are named {spec.name!r}; add client_id")
                return
            row = same[0] if same else None
            if spec.client_id:
                self.warnings.append(
                    f"client_id {spec.client_id!r} does not exist here; "
                    + (f"matched {spec.name!r} by name as {row.client_id!r}" if row else
                       "registering a new client with a new client_id")
                )
        if row is None:
            fields = {f: getattr(spec, f) for f in CLIENT_FIELDS if getattr(spec, f) is not None}
            channels = _wanted_channels(spec, rp_logout.Channels(None, False, None, False))
            fields.update({f: v for f, v in channels.describe().items() if v})
            try:
                clients.validate_registration(**_registration_args(spec))
                rp_logout.validate_channels(spec.redirect_uris or [],
                                            channels.backchannel_logout_uri,
                                            channels.frontchannel_logout_uri)
            except clients.ClientRegistrationError as exc:
                self.errors.append(f"client {spec.name!r}: {exc}")
                return
            run = partial(_register_client, spec, channels, self.actor)
            self.main.append(Change("create", "client", spec.name, fields, run))
            return
        current = clients.describe(row)
        diff = {}
        if spec.name != row.name:
            diff["name"] = _diff(row.name, spec.name)
        for f in CLIENT_FIELDS:
            value = getattr(spec, f)
            if f == "required_claims" and value is not None:  # stored with sub first
                value = list(dict.fromkeys(["sub", *value]))
            if value is not None and value != current.get(f):
                diff[f] = _diff(current.get(f), value)
        if diff:
            try:
                clients.validate_update(row.client_id, **_update_args(spec))
            except clients.ClientRegistrationError as exc:
                self.errors.append(f"client {spec.name!r}: {exc}")
                return
            run = partial(_update_client, row.client_id, spec, self.actor)
            self.main.append(Change("update", "client", row.client_id, diff, run))
        self.client_logout(spec, row)

    def client_logout(self, spec: ClientSpec, row: Any) -> None:
        """The logout channels of an existing client, after its metadata changed."""
        from idp.release import clients

        now = rp_logout.channels(row.client_id)
        wanted = _wanted_channels(spec, now)
        if wanted == now and spec.redirect_uris is None:
            return
        redirect_uris = spec.redirect_uris if spec.redirect_uris is not None else (
            row.redirect_uris or []
        )
        try:
            # New redirect URIs and a kept front channel: it must keep their origin.
            rp_logout.validate_channels(
                redirect_uris, wanted.backchannel_logout_uri if wanted != now else None,
                wanted.frontchannel_logout_uri)
        except clients.ClientRegistrationError as exc:
            self.errors.append(f"client {spec.name!r}: {exc}")
            return
        if wanted == now:
            return
        old, new = now.describe(), wanted.describe()
        diff = {f: _diff(old[f], new[f]) for f in LOGOUT_FIELDS if old[f] != new[f]}
        run = partial(_set_channels, row.client_id, wanted, self.actor)
        self.main.append(Change("update", "client_logout", row.client_id, diff, run))

    # -- SAML service providers ------------------------------------------------------
    def saml_sp(self, spec: SamlSpSpec, seen: set[str]) -> None:
        key = spec.entity_id
        if key in seen:
            self.errors.append(f"saml_sp {key!r} appears twice")
            return
        seen.add(key)
        reg = config_sps.registry()
        if reg is None:
            self.errors.append("saml_sps: SAML is not set up in this process")
            return
        opts = config_sps.options(spec)
        try:
            metadata = config_sps.read_metadata(reg, spec.metadata)
            if reg.find(key) is None:
                if metadata is None:
                    self.errors.append(f"saml_sp {key!r}: metadata is required to register it")
                    return
                reg.validate_registration(metadata, key, **opts)
                run: Callable[[], Any] = partial(config_sps.create, metadata, opts, self.actor)
                self.main.append(Change("create", "saml_sp", key, dict(opts), run))
                return
            diff = reg.changes(key, metadata, **opts)
        except ValueError as exc:  # the registry's RegistrationError and MetadataError
            self.errors.append(f"saml_sp {key!r}: {exc}")
            return
        if diff:
            run = partial(config_sps.update, key, metadata, opts, self.actor)
            self.main.append(Change("update", "saml_sp", key, diff, run))

    def plan(self) -> list[Change]:
        ordered = self._unit_order()
        for spec in ordered:
            self.unit(spec)
        for spec in ordered:
            self.profile_fields(spec)
        for spec in ordered:
            self.connectors(spec)
        for spec in ordered:
            self.domains(spec)
        for client in self.cfg.clients:
            self.client(client)
        entity_ids: set[str] = set()
        for sp in self.cfg.saml_sps:
            self.saml_sp(sp, entity_ids)
        return [*self.main, *self.rules, *self.late]


def _wanted_channels(spec: ClientSpec, now: rp_logout.Channels) -> rp_logout.Channels:
    """The logout channels the file asks for: ``now`` with the keys it wrote."""
    changes: dict[str, Any] = {}
    for f in LOGOUT_URI_FIELDS:
        if spec.given(f):
            changes[f] = getattr(spec, f) or None
    for f in LOGOUT_FIELDS:
        if f not in LOGOUT_URI_FIELDS and getattr(spec, f) is not None:
            changes[f] = bool(getattr(spec, f))
    return replace(now, **changes)


def _set_channels(
    client_id: str, channels: rp_logout.Channels, actor: str
) -> rp_logout.Channels:
    return rp_logout.set_channels(
        client_id,
        channels.backchannel_logout_uri, channels.backchannel_logout_session_required,
        channels.frontchannel_logout_uri, channels.frontchannel_logout_session_required,
        actor=actor,
    )


def _run_rules(name: str, unit_slug: str, actor: str, kwargs: dict[str, Any]) -> Any:
    args = dict(kwargs)
    if args.get("connector"):
        args["connector"] = _connector_id(unit_slug, args["connector"])
    return domain_rules.set_rules(name, actor=actor, **args)


def _connector_id(unit_slug: str, name: str) -> str:
    unit = units.get(unit_slug)
    for candidate in [unit, *units.ancestors(unit)]:
        for row in connectors_repo.list_all(candidate.id):
            if row.name == name:
                return row.id
    raise domains.DomainError("unknown_connector", f"no connector named {name!r}")


# ClientSpec field (RFC 7591 name) -> keyword of idp.release.clients.register/update
CLIENT_KEYWORDS = {
    "redirect_uris": "redirect_uris",
    "post_logout_redirect_uris": "post_logout_redirect_uris",
    "scope": "scope",
    "grant_types": "grant_types",
    "token_endpoint_auth_method": "auth_method",
    "id_token_signed_response_alg": "id_token_alg",
    "jwks": "jwks",
    "jwks_uri": "jwks_uri",
    "required_claims": "required_claims",
    "require_pushed_authorization_requests": "require_par",
    "dpop_bound_access_tokens": "dpop_bound",
}


def _update_args(spec: ClientSpec) -> dict[str, Any]:
    fields: dict[str, Any] = {"name": spec.name}
    for name, keyword in CLIENT_KEYWORDS.items():
        value = getattr(spec, name)
        if value is not None:
            fields[keyword] = value
    return fields


def _update_client(client_id: str, spec: ClientSpec, actor: str) -> tuple[Any, str | None]:
    from idp.release import clients

    return clients.update(client_id, actor=actor, **_update_args(spec))


def _registration_args(spec: ClientSpec) -> dict[str, Any]:
    from idp.release import clients

    method = spec.token_endpoint_auth_method
    return {
        "name": spec.name,
        "redirect_uris": spec.redirect_uris or [],
        "post_logout_redirect_uris": spec.post_logout_redirect_uris or (),
        "scope": spec.scope or clients.DEFAULT_SCOPE,
        "grant_types": spec.grant_types or clients.DEFAULT_GRANT_TYPES,
        "public": method == "none",
        "auth_method": method,
        "jwks": spec.jwks,
        "id_token_alg": spec.id_token_signed_response_alg or "ES256",
        "jwks_uri": spec.jwks_uri,
        "required_claims": spec.required_claims,
        "require_par": bool(spec.require_pushed_authorization_requests),
        "dpop_bound": bool(spec.dpop_bound_access_tokens),
    }


def _register_client(
    spec: ClientSpec, channels: rp_logout.Channels, actor: str
) -> tuple[Any, str | None]:
    """Register the client, then its logout channels (when the file names any)."""
    from idp.release import clients

    client, secret = clients.register(**_registration_args(spec), actor=actor)
    if channels != rp_logout.Channels(None, False, None, False):
        _set_channels(client.client_id, channels, actor)
    return client, secret
