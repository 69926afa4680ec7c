"""Demo data for development (what ``make run`` seeds through ``idp demo``).

Idempotent: running it again adds only what is missing. The demo merchant's secret
is stored as a keyed hash and cannot be shown twice, so every run issues the demo
client a fresh secret and prints it (the previous one stops working). Never run this
against a production database.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlencode

from idp import audit
from idp.accounts import accesses
from idp.accounts import lifecycle as accounts
from idp.crypto.primitives import random_token
from idp.domains import registry as domains
from idp.domains import rules as domain_rules
from idp.release import clients
from idp.services import hasher, settings
from idp.store import demo_repo
from idp.store.unit_of_work import atomic

UNIT_SLUG = "acme-demo"
UNIT_NAME = "Acme Demo GmbH"
# (name, label, required, typed definition: idp.units.field_types); the purchase
# limit is money the company sets, read-only for the employee
UNIT_FIELDS: list[tuple[str, str, bool, dict[str, Any]]] = [
    ("department", "Department", True, {"labels": {"de": "Abteilung"}}),
    ("purchase_limit", "Purchase limit", False, {
        "type": "money", "currency": "EUR", "set_by": "company",
        "labels": {"de": "Einkaufslimit"},
        "help": {"en": "Set by your company.", "de": "Von Ihrem Unternehmen festgelegt."},
    }),
]
CLIENT_NAME = "Acme Demo Shop"
REDIRECT_URI = "http://127.0.0.1:5001/callback"
CLIENT_SCOPE = "openid profile email phone wallet org offline_access"
EMPLOYEE_EMAIL = "employee@acme-demo.example"
DEMO_DOMAIN = "acme-demo.example"
DEMO_ACTOR = "idp demo"


@dataclass
class DemoResult:
    unit_id: str
    unit_slug: str
    unit_created: bool
    client_id: str
    client_secret: str
    client_created: bool
    redirect_uri: str
    membership: str
    employee_email: str
    domain: str
    authorize_url: str
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def seed(employee_email: str = EMPLOYEE_EMAIL) -> DemoResult:
    """Create (or complete) the demo unit, its two profile fields, its domain
    ``acme-demo.example`` (verified by hand: the demo has no DNS) with auto-join as
    ``employee``, and the demo merchant client; make ``employee_email`` a member of
    the unit if that account exists. Needs an app context."""
    with atomic():
        unit, unit_changed = demo_repo.ensure_unit(UNIT_SLUG, UNIT_NAME, UNIT_FIELDS)
    _ensure_domain(unit.id)
    existing = [c for c in clients.list_all() if c.name == CLIENT_NAME]
    if existing:
        client_id = existing[0].client_id
        secret = random_token(32)
        with atomic():
            demo_repo.replace_client_secret_hash(
                client_id, hasher().hash(secret, clients.SECRET_PURPOSE)
            )
            audit.record(DEMO_ACTOR, "client.update", client_id, {"fields": ["client_secret"]})
        created = False
    else:
        client, new_secret = clients.register(
            CLIENT_NAME,
            [REDIRECT_URI],
            post_logout_redirect_uris=["http://127.0.0.1:5001/"],
            scope=CLIENT_SCOPE,
            grant_types=["authorization_code", "refresh_token", "client_credentials"],
            actor=DEMO_ACTOR,
        )
        if new_secret is None:  # register() gives client_secret_basic clients a secret
            raise RuntimeError("demo client registered without a secret")
        client_id, secret, created = client.client_id, new_secret, True
    membership = _ensure_access(employee_email, unit.id)
    return DemoResult(
        unit_id=unit.id,
        unit_slug=UNIT_SLUG,
        unit_created=unit_changed,
        client_id=client_id,
        client_secret=secret,
        client_created=created,
        redirect_uri=REDIRECT_URI,
        membership=membership,
        employee_email=employee_email,
        domain=DEMO_DOMAIN,
        authorize_url=authorize_url(client_id),
    )


def _ensure_access(email: str, unit_id: str) -> str:
    """Give the account ``email`` an access to ``unit_id`` as ``employee``. Returns
    "missing" (no such account), "created" or "present"."""
    account = accounts.by_email(email)
    if account is None:
        return "missing"
    if accesses.find(account.id, unit_id) is not None:
        return "present"
    with atomic():
        accesses.create(account.id, unit_id, ["employee"], audit.Actor.operator("demo"))
    return "created"


def _ensure_domain(unit_id: str) -> None:
    """Claim the demo domain for the demo unit, verify it by hand (audited) and let
    e-mail-code sign-ins of that domain join the unit as ``employee``."""
    try:
        domain = domains.get(DEMO_DOMAIN)
    except domains.DomainError:
        domain = domains.claim(unit_id, DEMO_DOMAIN, actor=DEMO_ACTOR)
    if domain.state != "verified":
        domains.verify_manually(DEMO_DOMAIN, "demo data seeded by `idp demo`", DEMO_ACTOR)
    domain_rules.set_rules(DEMO_DOMAIN, auto_join=True, default_role="employee", actor=DEMO_ACTOR)


def authorize_url(client_id: str) -> str:
    """A ready-to-open authorization request of the demo client (code flow)."""
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": REDIRECT_URI,
            "scope": "openid profile email wallet org",
            "state": "demo-state",
            "nonce": "demo-nonce",
        }
    )
    return f"{settings().issuer.rstrip('/')}/authorize?{query}"
