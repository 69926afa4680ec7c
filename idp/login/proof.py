"""Proof that this interaction's browser just redeemed a code sent to an address
that has no account yet: what allows it to create the wallet of that address.

Kept in the ephemeral store under the interaction (``email-proof:<id>``) for the
rest of the interaction's life and consumed atomically (``take``) when the wallet
is created, so one proof creates at most one account.
"""

from __future__ import annotations

import time

from idp.interaction.pending import TTL_SECONDS, Interaction
from idp.services import ephemeral


def _key(interaction_id: str) -> str:
    return f"email-proof:{interaction_id}"


def remember(ix: Interaction, email: str) -> None:
    """Record that ``email`` was proven in ``ix`` just now."""
    ttl = max(1, int(TTL_SECONDS - (time.time() - ix.created_at)))
    ephemeral().put(_key(ix.id), {"email": email, "at": time.time()}, ttl)


def peek(ix: Interaction) -> str | None:
    """The proven address of ``ix``, if any, without consuming it."""
    data = ephemeral().get(_key(ix.id))
    return None if not data else str(data["email"])


def consume(ix: Interaction) -> str | None:
    """Take the proof (at most one caller gets it); the proven address or None."""
    data = ephemeral().take(_key(ix.id))
    return None if not data else str(data["email"])
