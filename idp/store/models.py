"""SQLAlchemy 2 typed models: the whole persistent state of Unitgate.

Every schema change comes with an Alembic migration in ``idp/migrations/versions``;
``tests/test_migrations.py`` fails when the models and the migrations disagree.
Secrets (client secrets, refresh tokens, session ids) are stored only as keyed hashes;
private keys only encrypted with the master key.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, registry, relationship


def new_id() -> str:
    """A random 128-bit identifier as 32 hex characters."""
    return uuid.uuid4().hex


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python, whatever the database."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    registry = registry(
        type_annotation_map={datetime: UTCDateTime, dict[str, Any]: JSON, list[str]: JSON}
    )


UNIT_ACTIVE = "active"
UNIT_BLOCKED = "blocked"


class Unit(Base):
    """A business unit: a company or one of its sub-units."""

    __tablename__ = "units"
    # The customer list's order and cursor seek (migration 0009p).
    __table_args__ = (Index("ix_units_name", "name", "id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(20), default="company")
    parent_id: Mapped[str | None] = mapped_column(
        ForeignKey("units.id", ondelete="SET NULL"), index=True
    )
    # Members signing in with an e-mail code or a password must add a TOTP code
    # (``idp.factors.totp``); SSO sign-ins are exempt.
    require_totp: Mapped[bool] = mapped_column(Boolean, default=False)
    # Every authorisation request for the members asks for a new code (or a new
    # upstream sign-in), whatever session exists (``idp.login.freshness``).
    fresh_code_every_sign_in: Mapped[bool] = mapped_column(Boolean, default=False)
    # Members holding an active access may also sign in with a password
    # (``idp.factors.passwords``; migration 0010p); e-mail codes stay available.
    passwords_allowed: Mapped[bool] = mapped_column(Boolean, default=False)
    # Tell a member by e-mail when someone acts as them (impersonation, migration
    # 0010i); the setting of the unit the person's access is in counts (no
    # inheritance: ``idp.interaction.impersonation``).
    notify_impersonation: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The IANA time zone of the unit's calendar (budget periods, issue 17).
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    # A customer's own data (top-level units; issue 12): ``status`` is ``active`` or
    # ``blocked`` (set by the operator's staff); a company has a postal ``address``
    # ({"street", "postal_code", "city", "country"}) and a ``vat_id``; a person
    # (``kind`` ``person``) a given and family name (``name`` is their display form).
    status: Mapped[str] = mapped_column(String(20), default="active")
    address: Mapped[dict[str, Any]] = mapped_column(default=dict)
    vat_id: Mapped[str | None] = mapped_column(String(40))
    given_name: Mapped[str] = mapped_column(String(200), default="")
    family_name: Mapped[str] = mapped_column(String(200), default="")
    # Whether a passkey sign-in with user verification counts as the new code that
    # ``fresh_code_every_sign_in`` asks for (``idp.factors.passkeys``; migration 0011k).
    passkey_counts_as_fresh: Mapped[bool] = mapped_column(Boolean, default=False)

    profile_fields: Mapped[list[UnitProfileField]] = relationship(
        back_populates="unit", cascade="all, delete-orphan", order_by="UnitProfileField.position"
    )
    # The unit's custom permission groups (``idp.rights``), usable as roles besides the
    # built-in ones (``idp.units.registry.BASE_ROLES``).
    permission_group_rows: Mapped[list[PermissionGroup]] = relationship(
        cascade="all, delete-orphan", order_by="PermissionGroup.name"
    )


class UnitProfileField(Base):
    """An extra wallet field a business unit defines for its employees."""

    __tablename__ = "unit_profile_fields"
    __table_args__ = (UniqueConstraint("unit_id", "name"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    unit_id: Mapped[str] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(200))
    required: Mapped[bool] = mapped_column(Boolean, default=False)
    position: Mapped[int] = mapped_column(Integer, default=0)
    # Typed fields (migration 0012f, ``idp.units.field_types``): ``text``, ``number``,
    # ``money`` (with ``currency``, ISO 4217), ``date``, ``choice`` (one of
    # ``choices``), ``email`` or ``phone``; ``labels`` and ``help`` map a language
    # (``en``, ``de``) to the label and help text in it (``label`` is the fallback);
    # ``set_by`` is ``employee`` (the employee fills it) or ``company`` (only the
    # company's HR system or directory sets it, e.g. a purchase limit).
    type: Mapped[str] = mapped_column(String(10), default="text")
    currency: Mapped[str | None] = mapped_column(String(3))
    choices: Mapped[list[str]] = mapped_column(default=list)
    labels: Mapped[dict[str, Any]] = mapped_column(default=dict)
    help: Mapped[dict[str, Any]] = mapped_column(default=dict)
    set_by: Mapped[str] = mapped_column(String(10), default="employee")

    unit: Mapped[Unit] = relationship(back_populates="profile_fields")


class AccountStatus(StrEnum):
    """An account's own, platform-wide status (``Account.status``); the one set of
    values, used everywhere (:mod:`idp.accounts.lifecycle` changes it). ``active``: may sign
    in; ``blocked``: stopped by the operator (only an unblock lifts it);
    ``deactivated``: stopped by its provisioning source (SCIM ``active`` false, an
    LDAP entry disabled or gone), which lifts it itself; ``deleted``: deprovisioned,
    the profile anonymised, the row kept as a tombstone for audit and sign-ins."""

    ACTIVE = "active"
    BLOCKED = "blocked"
    DEACTIVATED = "deactivated"
    DELETED = "deleted"


class Account(Base):
    """An employee's identity and corporate wallet."""

    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    # None: an account provisioned without an address (SCIM userName only, migration
    # 0011s); nobody can sign in to it by e-mail until an address is set.
    email: Mapped[str | None] = mapped_column(String(320), unique=True)
    email_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    given_name: Mapped[str] = mapped_column(String(200), default="")
    family_name: Mapped[str] = mapped_column(String(200), default="")
    phone_number: Mapped[str | None] = mapped_column(String(40))
    locale: Mapped[str | None] = mapped_column(String(35))  # a BCP 47 tag
    # Who owns each personal field: {"given_name": "scim"} (``idp.accounts.field_owners``); a
    # field without an entry belongs to the employee. Employer facts (cost centre,
    # unit fields, ...) are per access: ``Access.field_owners``.
    field_owners: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(20), default=AccountStatus.ACTIVE.value)
    failed_code_attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_at: Mapped[datetime | None] = mapped_column()
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    accesses: Mapped[list[Access]] = relationship(
        back_populates="account", cascade="all, delete-orphan"
    )

    # Optimistic concurrency for every ORM write of an account: the UPDATE carries
    # ``WHERE version = <the version read>``, so a writer that read the account before
    # another committed a change fails (StaleDataError, a Conflict at the unit of work)
    # instead of overwriting it. Writers bump ``version`` themselves.
    __mapper_args__ = {"version_id_col": version, "version_id_generator": False}

    @property
    def name(self) -> str:
        return f"{self.given_name} {self.family_name}".strip()

    @property
    def can_sign_in(self) -> bool:
        return self.status == AccountStatus.ACTIVE and self.locked_at is None



# Prefix search of the access lists (migration 0008b): ``lower(column) LIKE 'q%'``; on
# PostgreSQL with varchar_pattern_ops, whatever the collation.
for _column in (Account.email, Account.given_name, Account.family_name):
    Index(
        f"ix_accounts_{_column.key}_prefix",
        func.lower(_column).label(f"{_column.key}_lower"),
        postgresql_ops={f"{_column.key}_lower": "varchar_pattern_ops"},
    )
# An e-mail domain is a prefix of the reversed address (PostgreSQL only: SQLite has no
# reverse(); the lists filter by suffix there).
Index(
    "ix_accounts_email_reversed",
    func.reverse(func.lower(Account.email)).label("email_reversed"),
    postgresql_ops={"email_reversed": "varchar_pattern_ops"},
).ddl_if(dialect="postgresql")

class AccessStatus(StrEnum):
    """The status of an :class:`Access`, separate from the account's own status (a
    person blocked platform-wide is an account status; one unit suspending its access
    is this). Only ``active`` (and not past ``ends_at``) gives anything."""

    INVITED = "invited"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    REMOVED = "removed"


class Access(Base):
    """A person's access to a business unit: its status, its roles there, who created
    it and when, an optional end, and the last sign-in through it.

    Only an access that :meth:`grants` gives roles, permissions, org claims and can be
    chosen as the unit of a sign-in (``idp.accounts.accesses``)."""

    __tablename__ = "accesses"
    __table_args__ = (
        UniqueConstraint("account_id", "unit_id"),
        # A unit's list (migration 0008b; the accounts' prefix indexes are PostgreSQL
        # expression indexes of that migration, see idp/store/access_lists_repo.py).
        Index("ix_accesses_unit_id", "unit_id", "id"),
        # A customer's activity (migration 0009p, idp/store/customers_repo.py): the
        # newest sign-in of a unit, and the units with a sign-in since an instant.
        Index("ix_accesses_unit_signin", "unit_id", "last_signin_at"),
        Index("ix_accesses_last_signin", "last_signin_at", "unit_id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    unit_id: Mapped[str] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"))
    roles: Mapped[list[str]] = mapped_column(default=list)
    status: Mapped[str] = mapped_column(String(20), default=AccessStatus.ACTIVE.value)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Who created it, like the audit actor (``idp.audit.Actor``): kind and id.
    created_by_kind: Mapped[str] = mapped_column(String(20), default="system")
    created_by_id: Mapped[str | None] = mapped_column(String(200))
    # After this instant the access counts as not active (whatever its status).
    ends_at: Mapped[datetime | None] = mapped_column()
    # When a sign-in through this access last completed (set with the sign-in record).
    last_signin_at: Mapped[datetime | None] = mapped_column()
    # Employer facts: what this unit knows of the person, released for sign-ins
    # chosen for this unit. ``extra`` holds the unit's own wallet fields
    # (``UnitProfileField``) by name; ``field_owners`` who owns each fact
    # ({"cost_centre": "scim", "extra.ship_to": "ldap"}; absent: the employee).
    cost_centre: Mapped[str | None] = mapped_column(String(100))
    personnel_number: Mapped[str | None] = mapped_column(String(100))
    department: Mapped[str | None] = mapped_column(String(200))
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)
    field_owners: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Platform access: False for a contact who receives the unit's notifications but
    # may not sign in through this access (issue 12).
    platform_access: Mapped[bool] = mapped_column(Boolean, default=True)
    # The events that send this person an e-mail; None: the defaults of their roles.
    notifications: Mapped[list[str] | None] = mapped_column(JSON)
    # When access details (an invitation, a re-invite) were last sent.
    details_sent_at: Mapped[datetime | None] = mapped_column()

    account: Mapped[Account] = relationship(back_populates="accesses")
    unit: Mapped[Unit] = relationship()

    def grants(self, now: datetime | None = None) -> bool:
        """True when the access is active, has platform access (a contact without it
        only receives notifications), is not ended at ``now`` (default: now) and its
        unit is not blocked (a blocked customer's units all carry ``blocked``;
        ``idp.units.customers``). The readers on the sign-in path load the unit with
        the access, so the unit check costs no query there."""
        if self.status != AccessStatus.ACTIVE or self.platform_access is False:
            return False
        unit = self.unit
        if unit is not None and unit.status == UNIT_BLOCKED:
            return False
        return self.ends_at is None or self.ends_at > (now or utcnow())


class ScimToken(Base):
    """A business unit's SCIM bearer token, stored only as its keyed hash."""

    __tablename__ = "scim_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    unit_id: Mapped[str] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()


class ScimUser(Base):
    """The directory record of an account a unit provisions over SCIM.

    One provisioning unit per account; ``user_name_key`` is the lower-cased
    ``userName`` (unique per unit, SCIM compares it case-insensitively).
    """

    __tablename__ = "scim_users"
    __table_args__ = (
        UniqueConstraint("unit_id", "user_name_key"),
        Index("ix_scim_users_external", "unit_id", "external_id"),
    )

    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    # The id the HR system knows (SCIM ``id``): stable for the record's life, also
    # when the record is bound to its holder's own account (``idp.accounts.invitations``).
    scim_id: Mapped[str] = mapped_column(String(32), unique=True, default=new_id)
    # Set while the record is *pending* (``idp.provisioning.ownership``): the address HR gave, in
    # no domain the unit verified, not yet proven by its holder. The record's account
    # is then a placeholder with an undeliverable address until its holder joins.
    pending_email: Mapped[str | None] = mapped_column(String(320), index=True)
    # When the holder of a pending record's address proved it and joined: their own
    # account carries the record since, and deleting the record only detaches it.
    joined_at: Mapped[datetime | None] = mapped_column()
    unit_id: Mapped[str] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"))
    user_name: Mapped[str] = mapped_column(String(320))
    user_name_key: Mapped[str] = mapped_column(String(320))
    external_id: Mapped[str | None] = mapped_column(String(200))
    display_name: Mapped[str | None] = mapped_column(String(200))
    title: Mapped[str | None] = mapped_column(String(200))
    user_type: Mapped[str | None] = mapped_column(String(64))
    manager_id: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    account: Mapped[Account] = relationship()


class UnitGroup(Base):
    """A group a unit's HR system provisions (SCIM ``Group``)."""

    __tablename__ = "unit_groups"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    unit_id: Mapped[str] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"), index=True)
    display_name: Mapped[str] = mapped_column(String(256))
    external_id: Mapped[str | None] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class UnitGroupMember(Base):
    """An account's membership of a :class:`UnitGroup`."""

    __tablename__ = "unit_group_members"

    group_id: Mapped[str] = mapped_column(
        ForeignKey("unit_groups.id", ondelete="CASCADE"), primary_key=True
    )
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    added_at: Mapped[datetime] = mapped_column(default=utcnow)


class GroupRoleRule(Base):
    """Membership of a unit group named ``group_name`` (case-insensitive) gives ``role``
    in the unit (``idp.provisioning.unit_groups.sync_roles``)."""

    __tablename__ = "group_role_rules"
    __table_args__ = (UniqueConstraint("unit_id", "group_name", "role"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    unit_id: Mapped[str] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"))
    group_name: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Merchant(Base):
    """A merchant: the party behind one OIDC client or one SAML service provider, the
    record that consents, sign-ins and grants refer to.

    ``protocol`` (``oidc`` | ``saml``) and ``identifier`` (the OIDC ``client_id`` or
    the SAML entity ID) say which registration it stands behind; they are kept when
    the registration is deleted. Deleting a client or SP *retires* its merchant
    (``status`` ``removed``, ``removed_at``) instead of deleting it, so an employee's
    sign-in history, consents and grants keep their merchant and its name. A merchant
    is never deleted while anything refers to it (foreign keys without ON DELETE); an
    entity ID registered again after its removal gets a new merchant, so nothing
    given to the old one (a consent) carries over to whoever registers it next.
    """

    __tablename__ = "merchants"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    protocol: Mapped[str] = mapped_column(String(10))
    identifier: Mapped[str] = mapped_column(String(500), index=True)
    status: Mapped[str] = mapped_column(String(10), default="active")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    removed_at: Mapped[datetime | None] = mapped_column()


class Client(Base):
    """An OIDC relying party. Metadata names follow RFC 7591. Its merchant
    (``merchant_id``, one per client) is created with it and outlives it."""

    __tablename__ = "clients"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), unique=True)
    secret_hash: Mapped[str | None] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(200))
    redirect_uris: Mapped[list[str]] = mapped_column(default=list)
    post_logout_redirect_uris: Mapped[list[str]] = mapped_column(default=list)
    scope: Mapped[str] = mapped_column(Text, default="openid profile email")
    grant_types: Mapped[list[str]] = mapped_column(default=list)
    token_endpoint_auth_method: Mapped[str] = mapped_column(
        String(40), default="client_secret_basic"
    )
    jwks: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    id_token_signed_response_alg: Mapped[str] = mapped_column(String(10), default="ES256")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # FAPI-grade options (issue 18, migration 0011d): RFC 9126 §6 and RFC 9449 §5.2.
    require_pushed_authorization_requests: Mapped[bool] = mapped_column(default=False)
    dpop_bound_access_tokens: Mapped[bool] = mapped_column(default=False)
    # private_key_jwt keys published at a URL instead of ``jwks`` (migration 0012m):
    # fetched SSRF-checked and cached in the ephemeral store (idp.oidc.client_jwks).
    jwks_uri: Mapped[str | None] = mapped_column(Text)
    # The claims the merchant cannot do without (migration 0012c): the employee may
    # leave out every other one on the consent page. None: the default
    # (``idp.release.items.DEFAULT_REQUIRED``: subject and e-mail address).
    required_claims: Mapped[list[str] | None] = mapped_column(JSON)

    @property
    def is_public(self) -> bool:
        return self.token_endpoint_auth_method == "none"


class SigningKey(Base):
    """A signing key. ``state``: active (signs), published (in JWKS only), retired."""

    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    alg: Mapped[str] = mapped_column(String(10))
    state: Mapped[str] = mapped_column(String(12), default="active")
    private_key_encrypted: Mapped[str] = mapped_column(Text)
    public_jwk: Mapped[dict[str, Any]] = mapped_column()
    certificate_pem: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column()


class Grant(Base):
    """What one authorization produced: the family of its refresh and access tokens.

    Revoking a grant revokes every token of the family (code replay, refresh-token
    reuse, logout, blocking the account).
    """

    __tablename__ = "grants"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    # The OIDC client_id the tokens are bound to (checked at /token, userinfo and
    # introspection); the merchant behind it is the foreign key.
    client_id: Mapped[str] = mapped_column(String(64), index=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), index=True)
    unit_id: Mapped[str | None] = mapped_column(String(32))
    scope: Mapped[str] = mapped_column(Text, default="")
    session_id: Mapped[str | None] = mapped_column(String(64), index=True)
    auth_time: Mapped[datetime] = mapped_column(default=utcnow)
    acr: Mapped[str | None] = mapped_column(String(100))
    amr: Mapped[list[str]] = mapped_column(default=list)
    # The ``claims`` request parameter of the authorization (OIDC Core §5.5), as far
    # as the client may receive it (``idp.release.claims_request``); None without one.
    claims_request: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # The items the employee's consent left out when this grant was issued (a copy of
    # ``Consent.withheld``, kept in step when the dashboard changes it; 0012c), so
    # token, refresh and userinfo honour them without reading the consent.
    withheld: Mapped[list[str]] = mapped_column(default=list)
    # The impersonation this grant was issued in (migration 0010i): its tokens carry
    # ``act`` and die when it ends. None for the person's own sign-ins.
    impersonation_id: Mapped[str | None] = mapped_column(String(32), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()
    # The DPoP key (RFC 7638 thumbprint) the refresh tokens of a public client are
    # bound to (RFC 9449 §5, migration 0011d); None when not bound.
    dpop_jkt: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (Index("ix_grants_account", "account_id"),)


class RefreshToken(Base):
    """An opaque refresh token, stored by keyed hash, one of a grant's family."""

    __tablename__ = "refresh_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    grant_id: Mapped[str] = mapped_column(ForeignKey("grants.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column()

    grant: Mapped[Grant] = relationship()


class Session(Base):
    """A browser session. The cookie holds a 256-bit random id; we store its keyed hash."""

    __tablename__ = "sessions"

    id_hash: Mapped[str] = mapped_column(String(128), primary_key=True)
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    auth_time: Mapped[datetime] = mapped_column(default=utcnow)
    amr: Mapped[list[str]] = mapped_column(default=list)
    acr: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Both indexed (migration 0012s): the session sweeper (idp.interaction.rp_logout,
    # sessions_repo.unseen_with_participants) filters on ``expires_at <= now OR
    # last_seen_at <= idle_since`` and orders by ``expires_at``; PostgreSQL answers
    # the OR from the two indexes (BitmapOr) and scans the whole table with one only.
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    # Set while someone acts as this session's account (migration 0010i): the
    # :class:`Impersonation` that holds the actor's own session to return to.
    impersonation_id: Mapped[str | None] = mapped_column(String(32))


class Consent(Base):
    """What an account agreed to release to one merchant, and when."""

    __tablename__ = "consents"
    __table_args__ = (UniqueConstraint("account_id", "merchant_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), index=True)
    scopes: Mapped[list[str]] = mapped_column(default=list)
    claims: Mapped[list[str]] = mapped_column(default=list)
    # The optional items the employee left out for this merchant (migration 0012c):
    # claim names, and ``wallet:<name>`` for one unit field
    # (``idp.release.items``); never a required one.
    withheld: Mapped[list[str]] = mapped_column(default=list)
    granted_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class SignIn(Base):
    """One sign-in of an employee at a merchant: the dashboard's transaction list."""

    __tablename__ = "sign_ins"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), index=True)
    unit_id: Mapped[str | None] = mapped_column(String(32))
    protocol: Mapped[str] = mapped_column(String(10), default="oidc")
    released: Mapped[list[str]] = mapped_column(default=list)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class OutboxMessage(Base):
    """A side effect (e-mail) written in the same transaction as its cause."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(20), default="email")
    payload: Mapped[dict[str, Any]] = mapped_column()
    status: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column()


class AuditEvent(Base):
    """An append-only record of a security-relevant change (see :mod:`idp.audit`).

    ``seq`` is the event's place in the log: an integer primary key the database
    assigns on insert (PostgreSQL: an IDENTITY column, i.e. a sequence; SQLite:
    ``INTEGER PRIMARY KEY AUTOINCREMENT``, the rowid, never reused), so two writers
    always get distinct numbers. :mod:`idp.audit` inserts the events of a
    transaction only while it commits (under a lock on PostgreSQL), so seq order is
    commit order and an exporter's cursor (:func:`idp.audit.since`) skips nothing.
    ``id`` stays a unique random string for references. ``actor`` is the actor's
    display string (``account:<id>``, ``scim:<token>``...), kept for reading old
    events; ``actor_kind``/``actor_id``/``on_behalf_of`` are the structured actor.
    """

    __tablename__ = "audit_events"
    __table_args__ = {"sqlite_autoincrement": True}

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), Identity(), primary_key=True
    )
    id: Mapped[str] = mapped_column(String(32), unique=True, default=new_id)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(200))
    actor_kind: Mapped[str] = mapped_column(String(20))
    actor_id: Mapped[str | None] = mapped_column(String(200))
    on_behalf_of: Mapped[str | None] = mapped_column(String(32))
    unit_id: Mapped[str | None] = mapped_column(String(32), index=True)
    action: Mapped[str] = mapped_column(String(100))
    target: Mapped[str | None] = mapped_column(String(200))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    request_id: Mapped[str | None] = mapped_column(String(64))


class EphemeralEntry(Base):
    """Backing table of the SQL ephemeral store (see ``idp.ephemeral.sql``)."""

    __tablename__ = "ephemeral"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[float] = mapped_column(Float, index=True)


class LdapDirectory(Base):
    """An LDAP / Active Directory server a business unit syncs its employees from.

    The bind password is sealed with the master key (context ``ldap-bind:<id>``);
    ``attribute_map`` maps LDAP attribute names to account fields, ``group_map``
    group DNs (or their CN) to unit roles. ``schedule_minutes`` 0 means manual sync
    only. See ``docs/ldap.md``.
    """

    __tablename__ = "ldap_directories"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    unit_id: Mapped[str] = mapped_column(
        ForeignKey("units.id", ondelete="CASCADE"), unique=True
    )
    url: Mapped[str] = mapped_column(String(500))
    start_tls: Mapped[bool] = mapped_column(Boolean, default=False)
    ca_certificate: Mapped[str | None] = mapped_column(Text)
    bind_dn: Mapped[str] = mapped_column(String(500))
    bind_password_sealed: Mapped[str] = mapped_column(Text)
    base_dn: Mapped[str] = mapped_column(String(500))
    user_filter: Mapped[str] = mapped_column(String(1000))
    id_attribute: Mapped[str] = mapped_column(String(64))
    attribute_map: Mapped[dict[str, Any]] = mapped_column(default=dict)
    group_map: Mapped[dict[str, Any]] = mapped_column(default=dict)
    page_size: Mapped[int] = mapped_column(Integer, default=500)
    schedule_minutes: Mapped[int] = mapped_column(Integer, default=0)
    trust_email: Mapped[bool] = mapped_column(Boolean, default=False)
    login_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_run_at: Mapped[datetime | None] = mapped_column()
    last_run_summary: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class LdapLink(Base):
    """Which account an entry of an LDAP directory produced, keyed on the entry's
    stable id (``objectGUID``, ``entryUUID``), never on its e-mail address.

    ``state`` is what the last sync saw: ``active``, ``disabled`` (AD's
    ACCOUNTDISABLE bit) or ``missing``; ``deactivated_by_sync`` is set when the sync
    itself deactivated the account, so it only ever reactivates what it deactivated.
    """

    __tablename__ = "ldap_links"
    __table_args__ = (
        UniqueConstraint("directory_id", "external_id"),
        UniqueConstraint("directory_id", "account_id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    directory_id: Mapped[str] = mapped_column(
        ForeignKey("ldap_directories.id", ondelete="CASCADE")
    )
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    external_id: Mapped[str] = mapped_column(String(200))
    dn: Mapped[str] = mapped_column(String(1000))
    state: Mapped[str] = mapped_column(String(10), default="active")
    deactivated_by_sync: Mapped[bool] = mapped_column(Boolean, default=False)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)


class Connector(Base):
    """An upstream identity provider a business unit signs its employees in with.

    ``kind`` is google, microsoft, okta, oidc or saml; ``settings`` holds the
    kind's public configuration (issuer, client id, tenants, hosted domain, IdP
    metadata, attribute mapping, ...). ``secret_sealed`` is the one secret, sealed
    with the master key (context ``connector:<id>``): the OIDC client secret, or the
    SAML SP's private signing key. See ``docs/connect-*.md``.
    """

    __tablename__ = "connectors"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    unit_id: Mapped[str] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(200))
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    secret_sealed: Mapped[str | None] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class UpstreamIdentity(Base):
    """An account's identity at an upstream IdP, keyed on (connector, issuer, subject).

    Never keyed on e-mail: ``email`` is only what the upstream last asserted. For
    Microsoft the subject is ``<tid>/<oid>``. ``claims`` keeps the last mapped
    claims, so later sign-ins update only the fields this source owns.
    """

    __tablename__ = "upstream_identities"
    __table_args__ = (UniqueConstraint("connector_id", "issuer", "subject"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    connector_id: Mapped[str] = mapped_column(ForeignKey("connectors.id", ondelete="CASCADE"))
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    issuer: Mapped[str] = mapped_column(String(500))
    subject: Mapped[str] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(320))
    claims: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column()


class Domain(Base):
    """An e-mail domain a business unit claims (``docs/companies.md``).

    ``state``: ``pending`` until the DNS TXT record ``_unitgate-challenge.<name>``
    holds ``challenge``; ``verified`` (by ``dns`` or ``manual``); ``failed`` when the
    deadline passed (``failure_reason`` ``deadline``) or a re-check found the record
    gone (``lapsed``). ``include_subdomains`` is the explicit wildcard ``*.<name>``.
    A name belongs to at most one unit (unique).
    """

    __tablename__ = "domains"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    unit_id: Mapped[str] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(253), unique=True)
    include_subdomains: Mapped[bool] = mapped_column(Boolean, default=False)
    state: Mapped[str] = mapped_column(String(10), default="pending")
    challenge: Mapped[str] = mapped_column(String(64))
    deadline_at: Mapped[datetime] = mapped_column()
    verified_at: Mapped[datetime | None] = mapped_column()
    verified_method: Mapped[str | None] = mapped_column(String(10))
    verification_note: Mapped[str | None] = mapped_column(String(500))
    last_checked_at: Mapped[datetime | None] = mapped_column()
    last_check_result: Mapped[str | None] = mapped_column(String(200))
    failure_reason: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    unit: Mapped[Unit] = relationship()
    rule: Mapped[DomainRule | None] = relationship(
        back_populates="domain", cascade="all, delete-orphan", uselist=False
    )
    break_glass: Mapped[list[BreakGlassAccount]] = relationship(
        back_populates="domain", cascade="all, delete-orphan", order_by="BreakGlassAccount.email"
    )


class DomainRule(Base):
    """What a verified domain does at sign-in (``idp.domains.rules``).

    ``subunit_map`` maps values of the profile attribute ``subunit_attribute`` to
    unit ids (sub-units of the domain's unit).
    """

    __tablename__ = "domain_rules"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    domain_id: Mapped[str] = mapped_column(
        ForeignKey("domains.id", ondelete="CASCADE"), unique=True
    )
    auto_join: Mapped[bool] = mapped_column(Boolean, default=False)
    default_role: Mapped[str] = mapped_column(String(64), default="employee")
    require_sso: Mapped[bool] = mapped_column(Boolean, default=False)
    sso_connector_id: Mapped[str | None] = mapped_column(
        ForeignKey("connectors.id", ondelete="SET NULL")
    )
    subunit_attribute: Mapped[str | None] = mapped_column(String(64))
    subunit_map: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    domain: Mapped[Domain] = relationship(back_populates="rule")


class BreakGlassAccount(Base):
    """An address of a ``require_sso`` domain still allowed to sign in by e-mail code."""

    __tablename__ = "break_glass_accounts"
    __table_args__ = (UniqueConstraint("domain_id", "email"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    domain_id: Mapped[str] = mapped_column(ForeignKey("domains.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    domain: Mapped[Domain] = relationship(back_populates="break_glass")


class SamlServiceProvider(Base):
    """A SAML 2.0 service provider (a merchant), registered from its metadata.

    ``acs_endpoints`` and ``slo_endpoints`` are the endpoints of the SP's metadata
    (``{"url", "binding", "index", "default"}`` and ``{"url", "binding",
    "response_url"}``); an AuthnRequest may only name one of those ACS URLs.
    ``attributes`` lists the claim names released as SAML attributes
    (``idp.saml.attributes``). Its merchant (``merchant_id``, one per SP) is created
    with it and outlives it. See ``docs/merchants-saml.md``.
    """

    __tablename__ = "saml_service_providers"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    entity_id: Mapped[str] = mapped_column(String(500), unique=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    metadata_xml: Mapped[str] = mapped_column(Text)
    acs_endpoints: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    slo_endpoints: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    signing_certificates: Mapped[list[str]] = mapped_column(default=list)
    encryption_certificates: Mapped[list[str]] = mapped_column(default=list)
    encryption_method: Mapped[str | None] = mapped_column(String(100))
    nameid_format: Mapped[str] = mapped_column(String(20), default="persistent")
    sign_assertion: Mapped[bool] = mapped_column(Boolean, default=True)
    sign_response: Mapped[bool] = mapped_column(Boolean, default=True)
    require_signed_requests: Mapped[bool] = mapped_column(Boolean, default=False)
    idp_initiated: Mapped[bool] = mapped_column(Boolean, default=False)
    attributes: Mapped[list[str]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class SamlSessionParticipant(Base):
    """A SAML SP that received an assertion within one browser session: what single
    logout must tell it (the NameID and SessionIndex it was given)."""

    __tablename__ = "saml_session_participants"
    __table_args__ = (UniqueConstraint("session_id_hash", "sp_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    session_id_hash: Mapped[str] = mapped_column(
        ForeignKey("sessions.id_hash", ondelete="CASCADE")
    )
    sp_id: Mapped[str] = mapped_column(
        ForeignKey("saml_service_providers.id", ondelete="CASCADE"), index=True
    )
    name_id: Mapped[str] = mapped_column(String(500))
    name_id_format: Mapped[str] = mapped_column(String(100))
    session_index: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TotpCredential(Base):
    """An account's TOTP second factor (RFC 6238). The shared secret is stored only
    sealed with the master key (context: the account id); ``last_used_step`` is the
    newest time step accepted, so each step counts at most once."""

    __tablename__ = "totp_credentials"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), unique=True
    )
    secret_sealed: Mapped[str] = mapped_column(Text)
    confirmed_at: Mapped[datetime | None] = mapped_column()
    last_used_step: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PermissionGroup(Base):
    """A unit's custom permission group: a role name its members can hold, granting
    the named permissions of the catalogue (``idp.rights.catalogue``)."""

    __tablename__ = "permission_groups"
    __table_args__ = (UniqueConstraint("unit_id", "name"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    unit_id: Mapped[str] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    permissions: Mapped[list[str]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class StaffMember(Base):
    """An account of the platform operator's own people (``idp.rights.staff``)."""

    __tablename__ = "staff_members"

    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    added_at: Mapped[datetime] = mapped_column(default=utcnow)
    added_by: Mapped[str] = mapped_column(String(200))


class AdminClient(Base):
    """A client-credentials client of the administration API (``/api/v1``): it acts
    for one unit and its sub-units (``unit_id``) or, with ``unit_id`` None, for the
    whole operator (``idp.rights.admin_clients``)."""

    __tablename__ = "admin_clients"

    client_id: Mapped[str] = mapped_column(
        ForeignKey("clients.client_id", ondelete="CASCADE"), primary_key=True
    )
    unit_id: Mapped[str | None] = mapped_column(
        ForeignKey("units.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200))


class StaffAssignment(Base):
    """A staff member assigned to a customer (a top-level unit) as ``administrator``
    (every permission) or ``processor`` (the named ``permissions`` only)."""

    __tablename__ = "staff_assignments"
    __table_args__ = (UniqueConstraint("account_id", "unit_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(
        ForeignKey("staff_members.account_id", ondelete="CASCADE")
    )
    unit_id: Mapped[str] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    permissions: Mapped[list[str]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200))


class AccessInvitation(Base):
    """An invitation to register through an access (``idp.accounts.invites``): a
    single-use, expiring link sent by e-mail, and an SMS registration code when the
    person's mobile number is known. The link's token and the code are stored only as
    keyed hashes. One invitation per access is live; a re-invite ends the previous one
    (``end_reason`` ``replaced``)."""

    __tablename__ = "invitations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    access_id: Mapped[str] = mapped_column(
        ForeignKey("accesses.id", ondelete="CASCADE"), index=True
    )
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    unit_id: Mapped[str] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    sms_code_hash: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[datetime] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200))
    sent_at: Mapped[datetime | None] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()
    # Why it ended before use: ``revoked`` (an admin), ``replaced`` (a re-invite),
    # ``too_many_attempts`` (wrong SMS codes).
    end_reason: Mapped[str | None] = mapped_column(String(20))


# -- Passwords (issue 13, item 1; idp.factors.passwords; migration 0010p) -------------

PASSWORD_INITIAL = "initial"
PASSWORD_RESET_BY_STAFF = "reset_by_staff"
PASSWORD_SET_BY_USER = "set_by_user"


class PasswordCredential(Base):
    """An account's optional password: only its argon2id hash (PHC string, with the
    parameters it was made with) and its status, ``initial`` (generated and mailed),
    ``reset_by_staff`` (generated again by an administrator and mailed) or
    ``set_by_user`` (chosen by the person). No row: the account has no password."""

    __tablename__ = "password_credentials"

    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    hash: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(20))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(200))


# -- Impersonation ("log in as account", issue 13 item 2; migration 0010i) ----------


class Impersonation(Base):
    """Someone with ``impersonate`` acting as one of a unit's people
    (``idp.interaction.impersonation``). ``session_hash`` is the browser session
    that acts as the target; ``actor_session_hash`` the actor's own session, kept
    to return to. Rows stay after the end: the target's dashboard lists them."""

    __tablename__ = "impersonations"
    __table_args__ = (Index("ix_impersonations_target", "target_account_id", "started_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    unit_id: Mapped[str] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"), index=True)
    access_id: Mapped[str | None] = mapped_column(
        ForeignKey("accesses.id", ondelete="SET NULL")
    )
    target_account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE")
    )
    # ``account`` or ``staff``: the capacity the actor acted in.
    actor_kind: Mapped[str] = mapped_column(String(20))
    actor_account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    reason: Mapped[str] = mapped_column(String(500))
    session_hash: Mapped[str | None] = mapped_column(String(128), index=True)
    actor_session_hash: Mapped[str | None] = mapped_column(String(128))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    ends_at: Mapped[datetime] = mapped_column()
    ended_at: Mapped[datetime | None] = mapped_column()
    # ``ended`` (by the actor), ``expired`` (the time limit), ``signed_out``.
    end_reason: Mapped[str | None] = mapped_column(String(20))
# --- Webhooks (issue 13, item 5): endpoints per unit, deliveries, attempts -----------


class WebhookEndpoint(Base):
    """A unit's webhook receiver (Standard Webhooks, :mod:`idp.webhooks`). The
    signing secret is stored sealed with the master key (context
    ``webhook:<id>``); during a rotation the previous one signs as well until
    ``previous_secret_until``. ``events`` None means every event type.
    ``failing_since`` is the start of the current run of failed attempts (None after
    a success); the endpoint is disabled when that run lasts too long.
    It belongs to exactly one of a unit (``unit_id``) or a merchant client
    (``client_id``, the ``clients`` row; revision 0011m), which hears only the
    ``purchase.*`` events of purchases made through it."""

    __tablename__ = "webhook_endpoints"
    __table_args__ = (
        CheckConstraint("(unit_id IS NULL) <> (client_id IS NULL)",
                        name="ck_webhook_endpoints_one_owner"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    unit_id: Mapped[str | None] = mapped_column(
        ForeignKey("units.id", ondelete="CASCADE"), index=True
    )
    client_id: Mapped[str | None] = mapped_column(
        ForeignKey("clients.id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(String(2000))
    events: Mapped[list[str] | None] = mapped_column(JSON)
    description: Mapped[str] = mapped_column(String(500), default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    secret_sealed: Mapped[str] = mapped_column(Text)
    previous_secret_sealed: Mapped[str | None] = mapped_column(Text)
    previous_secret_until: Mapped[datetime | None] = mapped_column()
    failing_since: Mapped[datetime | None] = mapped_column()
    disabled_reason: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200))


class WebhookDelivery(Base):
    """One event for one endpoint: its id is the ``webhook-id`` (the same on every
    retry), ``body`` the exact JSON sent. Claimed for delivery with a lease like the
    outbox (:mod:`idp.store.leases`)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_endpoint", "endpoint_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    endpoint_id: Mapped[str] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE")
    )
    unit_id: Mapped[str | None] = mapped_column(String(32))  # None: a merchant's endpoint
    event_type: Mapped[str] = mapped_column(String(100))
    body: Mapped[str] = mapped_column(Text)
    timestamp: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column()


class WebhookAttempt(Base):
    """The log of one delivery attempt: when, the HTTP status (None when no answer
    came), how long it took, the error and the start of the response body."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (Index("ix_webhook_attempts_delivery", "delivery_id", "at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    delivery_id: Mapped[str] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE")
    )
    endpoint_id: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    status_code: Mapped[int | None] = mapped_column(Integer)
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(String(500))
    response: Mapped[str | None] = mapped_column(String(1000))


# --- Master-key rotation (ops): secrets of the instance, sealed ----------------------


class InstanceSecret(Base):
    """A secret of the whole installation kept sealed with the master key, so that it
    survives a master-key rotation (``idp.crypto.sealed_fields``). ``keyed-hash`` is the
    key of the keyed hashes of client secrets, refresh tokens, session ids and codes:
    those cannot be re-hashed, so the key must outlive the master key it was first
    derived from."""

    __tablename__ = "instance_secrets"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    value_sealed: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- Purchases, budgets and approvals (issue 17, ``idp.purchases``) -----------------


class Budget(Base):
    """A spending limit in ``unit_id``: for one access (``scope`` ``access``,
    ``subject`` the access id), everyone holding a permission group or built-in role
    (``group``/``role``, ``subject`` its name), or the unit as a whole (``unit``,
    ``subject`` ""), which is a pool shared by everyone in it (and in its sub-units
    when ``include_subunits``). Amounts are integer minor units of ``currency``."""

    __tablename__ = "budgets"
    __table_args__ = (UniqueConstraint("unit_id", "scope", "subject"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    unit_id: Mapped[str] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"), index=True)
    scope: Mapped[str] = mapped_column(String(10))
    subject: Mapped[str] = mapped_column(String(64), default="")
    period: Mapped[str] = mapped_column(String(10))
    currency: Mapped[str] = mapped_column(String(3))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    per_order_minor: Mapped[int | None] = mapped_column(BigInteger)
    include_subunits: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(200), default="system")


class BudgetUsage(Base):
    """What one period of a budget has used (reserved plus spent), in minor units:
    per person (``access_id``) for a personal budget, the pool ("") for a unit
    budget. ``period_start`` is the period's first day in the unit's time zone."""

    __tablename__ = "budget_usage"
    __table_args__ = (UniqueConstraint("budget_id", "access_id", "period_start"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    budget_id: Mapped[str] = mapped_column(ForeignKey("budgets.id", ondelete="CASCADE"))
    access_id: Mapped[str] = mapped_column(String(32), default="")
    period_start: Mapped[str] = mapped_column(String(10))
    used_minor: Mapped[int] = mapped_column(BigInteger, default=0)


class Purchase(Base):
    """A merchant's request to let a person buy on a unit's account, and its state:
    ``approved`` (budget reserved), ``pending_approval``, ``refused`` (``reason``),
    ``confirmed`` (spent), ``cancelled`` (released). ``charges`` lists the usage rows
    it reserved ([{"usage": id, "amount": minor}]) so a cancel releases exactly them."""

    __tablename__ = "purchases"
    __table_args__ = (
        Index("ix_purchases_unit", "unit_id", "created_at", "id"),
        Index("ix_purchases_account", "account_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    unit_id: Mapped[str] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    access_id: Mapped[str | None] = mapped_column(String(32))
    client_id: Mapped[str] = mapped_column(String(100), index=True)
    order_ref: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    lines: Mapped[list[Any]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(String(40))
    charges: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class PaymentMethod(Base):
    """A payment method a unit allows its people at merchants: ``kind`` one of
    ``invoice`` (``details``: the invoice address), ``purchase_order`` (a PO number
    is required), ``company_card`` (``details``: the card programme's reference or
    token, never a card number), ``cost_centre``. Narrowed to holders of ``roles``
    (empty: everyone) and to people whose budget lies within ``min_budget_minor`` /
    ``max_budget_minor``."""

    __tablename__ = "payment_methods"
    __table_args__ = (UniqueConstraint("unit_id", "kind"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    unit_id: Mapped[str] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    roles: Mapped[list[str]] = mapped_column(default=list)
    min_budget_minor: Mapped[int | None] = mapped_column(BigInteger)
    max_budget_minor: Mapped[int | None] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Approval(Base):
    """An order waiting for (or decided by) an approver: one per purchase. ``why`` is
    the limit it passed (``over_budget``, ``over_per_order_limit``); ``status``
    ``pending``, ``approved``, ``rejected``, ``expired`` or ``cancelled``."""

    __tablename__ = "approvals"
    __table_args__ = (Index("ix_approvals_unit_status", "unit_id", "status"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    purchase_id: Mapped[str] = mapped_column(
        ForeignKey("purchases.id", ondelete="CASCADE"), unique=True
    )
    unit_id: Mapped[str] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"))
    why: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20), default="pending")
    expires_at: Mapped[datetime] = mapped_column()
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decided_at: Mapped[datetime | None] = mapped_column()
    decision_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApprovalComment(Base):
    """A comment in an approval's thread: ``internal`` ones are seen only inside the
    company (approvers, the requester), never by the merchant."""

    __tablename__ = "approval_comments"
    __table_args__ = (Index("ix_approval_comments_approval", "approval_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    approval_id: Mapped[str] = mapped_column(ForeignKey("approvals.id", ondelete="CASCADE"))
    author: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    internal: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- Approval policies and chains (issue 17, item 3: wt-appr) -------------------------


class ApprovalPolicy(Base):
    """A unit's approval policy (inherited by its sub-units unless they set their own):
    ``steps`` is a list of ``{"above_minor": int, "approvers": str}`` in ascending
    thresholds (minor units of ``currency``); ``approvers`` is ``manager``,
    ``permission`` (holders of ``approvals.decide``) or ``group:<name>``.
    ``expiry_hours`` None: the setting ``IDP_APPROVAL_HOURS``."""

    __tablename__ = "approval_policies"

    unit_id: Mapped[str] = mapped_column(
        ForeignKey("units.id", ondelete="CASCADE"), primary_key=True
    )
    currency: Mapped[str] = mapped_column(String(3))
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    expiry_hours: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(200), default="")


class ApprovalChain(Base):
    """The steps an approval goes through, fixed when it opened (a later policy change
    does not alter it): ``steps`` as in :class:`ApprovalPolicy` (a single step
    ``any``: the buyer's manager or a holder of ``approvals.decide``); ``current`` the
    index of the step now deciding; ``decisions`` who approved each step and when.
    An approval without a chain row (opened before 0011a) is one ``any`` step."""

    __tablename__ = "approval_chains"

    approval_id: Mapped[str] = mapped_column(
        ForeignKey("approvals.id", ondelete="CASCADE"), primary_key=True
    )
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    current: Mapped[int] = mapped_column(Integer, default=0)
    decisions: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)


# --- Passkeys (WebAuthn Level 3; issue 18 item 7; migration 0011k) -----------------------


class PasskeyHandle(Base):
    """The account's WebAuthn user handle (``user.id``): 32 random bytes as base64url,
    never the account id or the address, so an authenticator's list of passkeys
    reveals nothing about the account."""

    __tablename__ = "passkey_handles"

    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    handle: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PasskeyCredential(Base):
    """A registered passkey: the credential id and COSE public key (base64url), the
    last signature counter (a non-zero counter that does not grow is refused), the
    backup flags (BE: may be synced, BS: is synced) and the employee's name for it."""

    __tablename__ = "passkey_credentials"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    credential_id: Mapped[str] = mapped_column(String(1400), unique=True)
    public_key: Mapped[str] = mapped_column(Text)
    sign_count: Mapped[int] = mapped_column(BigInteger, default=0)
    name: Mapped[str] = mapped_column(String(64))
    aaguid: Mapped[str] = mapped_column(String(36), default="")
    backup_eligible: Mapped[bool] = mapped_column(Boolean, default=False)
    backup_state: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column()


# --- RP logout: OIDC Back-Channel and Front-Channel Logout (issue 18 item 3) ---


class ClientLogoutChannel(Base):
    """A client's logout channels (OIDC Back-Channel Logout 1.0 §2.2, Front-Channel
    Logout 1.0 §2): where a logout token is POSTed, where the logout page frames."""

    __tablename__ = "client_logout_channels"

    client_id: Mapped[str] = mapped_column(
        ForeignKey("clients.client_id", ondelete="CASCADE"), primary_key=True
    )
    backchannel_logout_uri: Mapped[str | None] = mapped_column(Text)
    backchannel_logout_session_required: Mapped[bool] = mapped_column(Boolean, default=False)
    frontchannel_logout_uri: Mapped[str | None] = mapped_column(Text)
    frontchannel_logout_session_required: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class OidcSessionParticipant(Base):
    """A client that received an ID token in a browser session: it takes part in
    that session's logout. Removed when the session ends."""

    __tablename__ = "oidc_session_participants"
    __table_args__ = (UniqueConstraint("session_id_hash", "client_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    session_id_hash: Mapped[str] = mapped_column(
        ForeignKey("sessions.id_hash", ondelete="CASCADE"), index=True
    )
    client_id: Mapped[str] = mapped_column(
        ForeignKey("clients.client_id", ondelete="CASCADE")
    )
    account_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class BackchannelLogout(Base):
    """One logout token for one client: POSTed by the delivery loop with retries,
    claimed with a lease like the outbox (:mod:`idp.store.leases`). ``claims`` holds
    the token's lasting claims (``jti`` too, the same on every retry); it is signed
    afresh, with new ``iat`` and ``exp``, at each attempt."""

    __tablename__ = "backchannel_logouts"
    __table_args__ = (Index("ix_backchannel_logouts_due", "status", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    client_id: Mapped[str] = mapped_column(String(64))
    url: Mapped[str] = mapped_column(Text)
    claims: Mapped[dict[str, Any]] = mapped_column()
    alg: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column()
    # What the row sends (migration 0012l): ``oidc`` a logout token (``claims``: the
    # token's lasting claims), ``saml`` a SOAP LogoutRequest to a SAML SP (``claims``:
    # the SP, NameID, format and SessionIndex it was given; ``client_id`` the SP's id).
    kind: Mapped[str] = mapped_column(String(10), default="oidc", server_default="oidc")


# --- Branding: merchant and company logos and colours (issue 16 item 5) ---


class Branding(Base):
    """The look of one merchant's sign-in pages or one company's pages: a logo (the
    uploaded bytes, already checked by ``idp.branding.images``: PNG, JPEG or WebP,
    bounded in size and dimensions; served at a URL carrying ``logo_sha256``) and, for
    merchants, colours (``#rrggbb``, contrast-checked by ``idp.branding.colours``).
    Exactly one of ``merchant_id`` and ``unit_id`` is set."""

    __tablename__ = "brandings"
    __table_args__ = (
        CheckConstraint(
            "(merchant_id IS NULL) <> (unit_id IS NULL)", name="ck_brandings_one_owner"
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    merchant_id: Mapped[str | None] = mapped_column(ForeignKey("merchants.id"), unique=True)
    unit_id: Mapped[str | None] = mapped_column(
        ForeignKey("units.id", ondelete="CASCADE"), unique=True
    )
    logo: Mapped[bytes | None] = mapped_column(LargeBinary)
    logo_type: Mapped[str | None] = mapped_column(String(20))
    logo_sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    logo_width: Mapped[int | None] = mapped_column(Integer)
    logo_height: Mapped[int | None] = mapped_column(Integer)
    primary_color: Mapped[str | None] = mapped_column(String(7))
    background_color: Mapped[str | None] = mapped_column(String(7))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


# --- Console CSV imports run in the background with progress (issue 14) ---


class AccessImport(Base):
    """One uploaded CSV import of a unit's accesses, run by a background worker:
    claimed with a lease like the outbox (:mod:`idp.store.leases`; ``status``
    ``pending``, ``sending`` while a node runs it, ``sent`` when finished, ``dead``
    when it could not run), its progress (``rows_done`` of ``rows_total``, the
    partial ``report``) saved as it goes. ``data`` is the uploaded file (bounded by
    ``IDP_CSV_IMPORT_MAX_BYTES``), dropped when the import finished."""

    __tablename__ = "access_imports"
    __table_args__ = (Index("ix_access_imports_due", "status", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    unit_id: Mapped[str] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"), index=True)
    account_id: Mapped[str] = mapped_column(String(32))  # who uploaded it (acts as them)
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    data: Mapped[bytes | None] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    rows_total: Mapped[int] = mapped_column(Integer, default=0)
    rows_done: Mapped[int] = mapped_column(Integer, default=0)
    report: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    failure: Mapped[str | None] = mapped_column(Text)  # why the file as a whole was refused
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Indexed (migration 0012s): imports are deleted IDP_CSV_IMPORT_RETENTION_DAYS
    # after it (idp.accounts.import_jobs.prune).
    finished_at: Mapped[datetime | None] = mapped_column(index=True)


# --- Connector ids are never reused (a deleted connector's URLs stay dead) ---


class ConnectorIdLedger(Base):
    """Every id a connector was ever created under, kept when the connector is
    deleted (by ``idp connectors delete``, the console, ``idp apply`` or with its
    unit): a connector's callback, ACS and metadata URLs embed its id, so an id given
    again would hand the new owner the answers and bookmarks meant for the old one.
    The primary key makes two creations of one id impossible, also in parallel.
    ``unit_id`` is the unit the id was first given to (no foreign key: the entry
    outlives its unit; None when migration 0012t could not tell)."""

    __tablename__ = "connector_id_ledger"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    unit_id: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
