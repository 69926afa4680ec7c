"""Settings read from ``IDP_*`` environment variables.

Every field here is documented in the README's configuration table; a test keeps the
two in step (``tests/test_docs.py``).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Process configuration. Unknown ``IDP_*`` variables are ignored."""

    model_config = SettingsConfigDict(env_prefix="IDP_", extra="ignore")

    issuer: str = Field(
        "http://127.0.0.1:5000",
        description="Public base URL; the OIDC `iss` and the prefix of every endpoint.",
    )
    database_url: str = Field(
        f"sqlite:///{PROJECT_ROOT / 'instance' / 'unitgate.db'}",
        description="SQLAlchemy URL. SQLite (default, embedded) or "
        "`postgresql+psycopg://user@host/db`.",
    )
    redis_url: str | None = Field(
        None,
        description="Redis URL for the ephemeral store (codes, interactions, rate limits). "
        "Unset: the SQL database holds them.",
    )
    redis_sentinels: str = Field(
        "",
        description="Redis Sentinel addresses (`host:port,host:port`). Set: the ephemeral "
        "store asks them for the master of `IDP_REDIS_SENTINEL_MASTER` and follows a "
        "failover; `IDP_REDIS_URL` then only gives the scheme, password and database "
        "number (its host is ignored) and may be unset.",
    )
    redis_sentinel_master: str = Field(
        "mymaster", description="Name of the master the sentinels monitor."
    )
    redis_sentinel_password: str | None = Field(
        None, description="Password of the sentinels themselves (`requirepass` on them)."
    )
    redis_tls_ca_file: str | None = Field(
        None,
        description="CA bundle (PEM) that verifies Redis's certificate with `rediss://` "
        "(and the sentinels' with `IDP_REDIS_SENTINELS`). Unset: the system CAs.",
    )
    redis_tls_cert_file: str | None = Field(
        None, description="Client certificate (PEM) for Redis servers that require one."
    )
    redis_tls_key_file: str | None = Field(
        None, description="Private key (PEM) of `IDP_REDIS_TLS_CERT_FILE`."
    )
    redis_prefix: str = Field(
        "ug:", description="Prefix of every Redis key, so one Redis can serve several uses."
    )
    master_key: str | None = Field(
        None,
        description="Base64url 32-byte key that encrypts private signing keys at rest. "
        "Unset: read from `IDP_MASTER_KEY_FILE`.",
    )
    master_key_file: str = Field(
        str(PROJECT_ROOT / "keys" / "master.key"),
        description="File holding the master key when `IDP_MASTER_KEY` is unset "
        "(`idp init` creates it in development).",
    )
    secret_key: str | None = Field(
        None,
        description="Key for CSRF tokens and keyed hashes of codes and secrets. "
        "Unset: derived from the master key.",
    )
    smtp_url: str | None = Field(
        None,
        description="Outgoing mail: `smtp://host:port`, `smtp+starttls://user:pass@host:587`"
        " or `smtps://user:pass@host:465`. Unset: development mode, codes are printed "
        "to the console and shown at `/dev/outbox`.",
    )
    mail_from: str = Field("Unitgate <no-reply@unitgate.localhost>", description="Sender.")
    dev_mode: bool = Field(
        False,
        description="Development conveniences: `/dev/outbox`, codes on the console, "
        "cookies without `Secure` on plain-http localhost. Never in production.",
    )
    secure_cookies: bool = Field(
        True,
        description="Set `Secure` on cookies. Only `false` for plain-http localhost.",
    )
    session_idle_minutes: int = Field(30, description="Session idle timeout.")
    session_absolute_hours: int = Field(12, description="Session absolute lifetime.")
    access_token_seconds: int = Field(600, description="Lifetime of access and ID tokens.")
    refresh_token_days: int = Field(
        30, description="Absolute lifetime of a refresh-token family."
    )
    code_seconds: int = Field(60, description="Lifetime of authorization codes (max 60).")
    otp_minutes: int = Field(10, description="Lifetime of an email one-time code (max 10).")
    otp_max_tries: int = Field(5, description="Wrong tries allowed per one-time code.")
    otp_sends_per_address: int = Field(
        5,
        description="Codes sent to one address for one requester (a browser known for "
        "the address, else one client IP or IPv6 /64) per 15 minutes.",
    )
    otp_sends_per_address_unknown: int = Field(
        20,
        description="Codes sent to one address per 15 minutes for all requesters together "
        "that are not a browser known for it (caps mail-bombing; known browsers are "
        "exempt).",
    )
    otp_sends_per_ip: int = Field(
        300,
        description="Codes requested per 15 minutes from one client IP (IPv6: one /64) by "
        "browsers not known for the address; sized for a company behind one NAT address.",
    )
    lockout_failures: int = Field(
        100,
        description="Consecutive wrong code entries for an account (max 100) after which "
        "its 6-digit codes are refused from browsers not known for it: those get a "
        "16-digit code until the mailbox is proven or `idp accounts unlock` runs.",
    )
    known_device_days: int = Field(
        180,
        description="How long a browser stays known for an address after it last "
        "redeemed a code sent there (`ug_device` cookie; max 400).",
    )
    token_failures_per_client: int = Field(
        10,
        ge=1,
        description="Failed client authentications (and failed grants of public clients) "
        "at `/token`, `/introspect` and `/revoke` for one client id from one IP per window; "
        "more answer 429.",
    )
    token_failures_per_ip: int = Field(
        50,
        ge=1,
        description="The same failures from one IP, all client ids together, per window; "
        "more answer 429.",
    )
    token_failure_window_seconds: int = Field(
        300, ge=1, description="Window of the two limits above (fixed, aligned to the clock)."
    )
    dns_resolver: str | None = Field(
        None,
        description="DNS server (`host[:port]`, IPv6 as `[addr]:port`) asked for the "
        "`_unitgate-challenge` TXT records of claimed domains. Unset: the system resolver.",
    )
    dns_timeout_seconds: float = Field(
        5.0, description="Time allowed for one domain-verification DNS lookup."
    )
    domain_verify_days: int = Field(
        7, description="Days a claimed domain may stay pending before it fails."
    )
    domain_recheck_hours: int = Field(
        24,
        description="`idp domains check` re-checks a verified domain's TXT record when "
        "the last check is older than this; a record gone means the domain lapses.",
    )
    domain_validity_days: int = Field(
        30,
        description="A DNS-verified domain whose last successful check is older than "
        "this stops auto-joining and forcing SSO until a check succeeds again.",
    )
    consumer_domains: str = Field(
        "",
        description="Extra consumer mail domains (comma-separated) refused as company "
        "domains, besides the built-in list in `idp/domains/registry.py`.",
    )
    ldap_scheduler_seconds: float = Field(
        30.0,
        description="How often each server worker looks for due LDAP syncs "
        "(`idp ldap add --schedule-minutes`); 0 turns the scheduler off on this node.",
    )
    scim_bulk_max_operations: int = Field(
        1000,
        ge=1,
        description="Most operations in one SCIM Bulk request (its `maxOperations`); "
        "more is refused with 413 before any runs.",
    )
    scim_bulk_seconds: float = Field(
        10.0,
        gt=0,
        description="Time budget of one SCIM Bulk request: once spent, no further "
        "operation starts and each one left is answered 503 (send it again). Keep it "
        "well below `idp serve --timeout`.",
    )
    invitation_hours: int = Field(
        72,
        ge=1,
        le=720,
        description="Lifetime of an invitation's registration link and SMS code "
        "(`idp invitations resend` sends a new one).",
    )
    invitations_per_unit_hour: int = Field(
        500,
        ge=1,
        le=100_000,
        description="Invitation and welcome e-mails (with their SMS) one unit may send "
        "per hour, new contacts and resends together; more are refused (API: 429 "
        "`too_many_invitations`), so an administrator's account cannot be used to mail "
        "strangers in bulk.",
    )
    invitation_sms_tries: int = Field(
        5,
        ge=1,
        le=20,
        description="Wrong SMS registration codes allowed per invitation; then the "
        "invitation is burnt and must be resent.",
    )
    sms_provider: str | None = Field(
        None,
        description="SMS sender: `gateway` (JSON POST of `{\"to\", \"text\"}` to "
        "`IDP_SMS_URL`) or `twilio-shaped` (form POST of `To`, `From`, `Body` with basic "
        "auth to `IDP_SMS_URL/Accounts/<IDP_SMS_ACCOUNT>/Messages.json`). Unset: "
        "`gateway` when `IDP_SMS_URL` is set, else development (console and `/dev/outbox`).",
    )
    sms_url: str | None = Field(
        None,
        description="The SMS gateway's URL (`gateway`), or the base URL of the "
        "messages API (`twilio-shaped`). http or https.",
    )
    sms_token: str | None = Field(
        None,
        description="`gateway`: optional bearer token sent as `Authorization: Bearer`. "
        "`twilio-shaped`: the auth token (basic-auth password).",
    )
    sms_account: str | None = Field(
        None,
        description="`twilio-shaped`: the account id (basic-auth user and part of the path).",
    )
    sms_from: str | None = Field(
        None, description="`twilio-shaped`: the sender (`From`): a number or sender id."
    )
    sms_timeout_seconds: float = Field(
        10.0,
        gt=0,
        le=60,
        description="Time allowed for one SMS hand-over; a timeout is retried like mail.",
    )
    log_level: str = Field("INFO", description="Python logging level.")
    log_format: str = Field(
        "text",
        description="`text` (one readable line) or `json` (one JSON object per line with "
        "`ts`, `level`, `logger`, `message` and the `request_id`).",
    )
    metrics_token: str | None = Field(
        None,
        description="Bearer token that `GET /metrics` requires. Unset: `/metrics` answers "
        "loopback peers only (after `--proxy-hops`).",
    )
    # -- passwords (issue 13, item 1; idp.factors.passwords) --
    argon2_time_cost: int = Field(
        3, ge=1, le=20,
        description="Argon2id iterations for password hashes; a changed value rehashes each "
        "password at its next successful sign-in.",
    )
    argon2_memory_kib: int = Field(
        65536, ge=8192, le=4194304,
        description="Argon2id memory per password hash, in KiB (64 MiB by default).",
    )
    argon2_parallelism: int = Field(
        1, ge=1, le=16, description="Argon2id lanes per password hash."
    )
    password_min_length: int = Field(
        10, ge=8, le=64,
        description="Minimum length of a password a person chooses (generated initial "
        "passwords have 12 characters).",
    )
    impersonation_minutes: int = Field(
        30, ge=1, le=480,
        description="How long an impersonation (\"log in as account\") lasts at most; a "
        "request may ask for less, never more (1 to 480).",
    )
    webhook_allow_private: bool = Field(
        False,
        description="Allow webhook receivers on private, loopback and link-local addresses "
        "and plain `http://` URLs (tests, receivers inside the operator's network).",
    )
    webhook_timeout_seconds: float = Field(
        10.0, gt=0, le=60, description="Time allowed for one webhook delivery attempt."
    )
    webhook_rotation_overlap_hours: float = Field(
        24.0,
        ge=0,
        le=24 * 30,
        description="After a webhook secret rotation the previous secret signs as well "
        "for this many hours.",
    )
    webhook_disable_after_days: float = Field(
        5.0,
        gt=0,
        le=90,
        description="A webhook endpoint whose deliveries failed without a success for "
        "this many days is disabled, and the unit's main users are told by e-mail.",
    )
    master_key_previous: str | None = Field(
        None,
        description="Comma-separated earlier (or, before the switch, next) master keys, "
        "accepted for opening sealed values only, never for sealing: set while "
        "`idp master-key rotate` re-seals (docs/operations.md, \"Master-key rotation\").",
    )
    csv_import_max_bytes: int = Field(
        50_000_000,
        ge=1_000,
        le=1_000_000_000,
        description="The largest CSV body `POST /api/v1/units/{unit_id}/accesses/import` "
        "accepts (413 beyond); the CLI's `idp accesses import` reads files of any size.",
    )
    approval_hours: float = Field(
        72,
        gt=0,
        le=2160,
        description="How long an order waits for approval before it expires (refused "
        "with `approval_expired`); also the lifetime of the approvers' e-mail links.",
    )
    backchannel_allow_private: bool = Field(
        False,
        description="Allow OIDC back-channel logout URIs, SAML SOAP logout endpoints, "
        "client `jwks_uri`s and SAML SP metadata URLs on private, loopback and "
        "link-local addresses and plain `http://` URLs (tests, relying parties inside the "
        "operator's network); the same SSRF rules as webhooks otherwise.",
    )
    federation_allow_private: bool = Field(
        False,
        description="Allow SSO connectors' upstream calls (discovery, keys, token, UserInfo) "
        "to private, loopback and link-local addresses and plain `http://` on loopback. Off, "
        "they reach public https addresses only, since company admins configure connectors.",
    )
    # Branding (issue 16 item 5, docs/oidc.md "Branding of the sign-in pages").
    logo_max_bytes: int = Field(262_144, ge=1_024, le=5_000_000, description="The largest "
                                "logo an admin may upload (413 `too_large` beyond).")
    default_logo: str | None = Field(None, description="A PNG, JPEG or WebP file shown "
                                     "where a merchant has no logo. Unset: the built-in one.")
    privacy_url: str | None = Field(None, description="The privacy notice linked from "
                                    "every page's footer. Unset: no link.")
    help_url: str | None = Field(None, description="The help page linked from every "
                                 "page's footer. Unset: no link.")
    platform_staff: str = Field(
        "",
        description="E-mail addresses (comma-separated) of the operator's staff members "
        "who act platform-wide: every permission in every customer and the platform-wide "
        "ones (create customers, assign staff), as an operator client does. Each must "
        "also be a staff member (`idp staff add`) who can sign in; others act only in "
        "the customers assigned to them.",
    )
    dpop_nonce: bool = Field(
        False,
        description="Require a server-provided nonce in DPoP proofs (RFC 9449 §8, §9): "
        "a proof without a current one is answered `use_dpop_nonce` with a `DPoP-Nonce` "
        "header. Nonces are stateless (an HMAC of the time window), so every node accepts "
        "every other's.",
    )
    csv_import_retention_days: int = Field(
        30,
        gt=0,
        le=3650,
        description="Finished console CSV imports (their progress page and report) are "
        "deleted this many days after they finished, by the `access-imports` loop of "
        "the workers.",
    )

    @field_validator("log_format")
    @classmethod
    def _known_log_format(cls, value: str) -> str:
        value = value.strip().lower()
        if value not in ("text", "json"):
            raise ValueError("IDP_LOG_FORMAT is text or json")
        return value

    @field_validator("sms_provider")
    @classmethod
    def _known_sms_provider(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip().lower()
        if value not in ("gateway", "twilio-shaped"):
            raise ValueError("IDP_SMS_PROVIDER is gateway or twilio-shaped")
        return value

    @field_validator("privacy_url", "help_url")
    @classmethod
    def _footer_link(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip()
        if not value.startswith(("https://", "http://")) or any(c in value for c in "\"<> "):
            raise ValueError("IDP_PRIVACY_URL and IDP_HELP_URL are http(s) URLs")
        return value

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
