"""Consent per item (issue 16 item 4; ``docs/account.md``): which released items a
merchant requires and which ones the employee may leave out.

An *item* is a claim name (``phone_number``) or one unit field of ``wallet_fields``
(``wallet:purchase_limit``). A merchant declares the claims it cannot do
without (``Client.required_claims``); without a declaration, and for every SAML SP,
:data:`DEFAULT_REQUIRED` holds: the subject and the e-mail address. ``sub`` is
required always (no sign-in without it). Every other item is optional: the consent
page offers to leave it out, the choice is stored on the consent
(``Consent.withheld``) and copied onto each grant (``Grant.withheld``), and
:func:`idp.release.claims.released_claims` drops what is withheld, for the ID token,
userinfo and SAML alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

WALLET = "wallet_fields"
WALLET_PREFIX = "wallet:"
ALWAYS_REQUIRED = frozenset({"sub"})
DEFAULT_REQUIRED: tuple[str, ...] = ("sub", "email", "email_verified")
# Claims that go with a listed one without being listed themselves: whether the
# address is confirmed, the full name (made of given and family name), the
# company's internal id (its name stands for it on every page).
COMPANIONS: dict[str, tuple[str, ...]] = {
    "email": ("email_verified",),
    "given_name": ("name",),
    "family_name": ("name",),
    "org_name": ("org_id",),
}


def _with_companions(names: Iterable[str]) -> list[str]:
    out = list(dict.fromkeys(names))
    for name in list(out):
        out += [c for c in COMPANIONS.get(name, ()) if c not in out]
    return out


def required(declared: Iterable[str] | None) -> frozenset[str]:
    """The items a merchant requires: its ``declared`` claims (None: the default),
    always ``sub``, and each required claim's companions (``email_verified``)."""
    names = [*(DEFAULT_REQUIRED if declared is None else declared), *ALWAYS_REQUIRED]
    return frozenset(_with_companions(names))


def wallet_item(field: str) -> str:
    """The item of one unit field: ``wallet:<field>``."""
    return WALLET_PREFIX + field


def withheld_after(
    before: Iterable[str], offered: Iterable[str], shared: Iterable[str],
    needed: Iterable[str] = (),
) -> list[str]:
    """The items withheld after a choice: of the ``offered`` optional items, those not
    ``shared``, with their companions; items not offered this time keep their
    earlier choice; never a ``needed`` (required) item."""
    offered_set, shared_set, needed_set = set(offered), set(shared), set(needed)
    companions = {c for i in offered_set for c in COMPANIONS.get(i, ())}
    kept = [i for i in before if i not in offered_set and i not in companions]
    chosen = [i for i in offered if i not in shared_set]
    return [i for i in _with_companions([*kept, *chosen]) if i not in needed_set]


def leave_out(claims: dict[str, Any], withheld: Iterable[str]) -> dict[str, Any]:
    """``claims`` without the ``withheld`` items (never ``sub``); a withheld unit field
    leaves ``wallet_fields``, which goes when no field is left."""
    gone = set(withheld) - ALWAYS_REQUIRED
    if not gone:
        return claims
    out = {k: v for k, v in claims.items() if k not in gone}
    fields = out.get(WALLET)
    if isinstance(fields, Mapping):
        kept = {k: v for k, v in fields.items() if wallet_item(k) not in gone}
        if kept:
            out[WALLET] = kept
        else:
            out.pop(WALLET)
    return out
