"""Post/Redirect/Get for the login pages: every POST answers 303, so what the next
GET must show (field errors, the values typed, a notice such as "a new code was
sent") is kept for a few minutes in the ephemeral store under the interaction,
never in a client-side cookie, and read exactly once."""

from __future__ import annotations

from dataclasses import dataclass, field

from idp.services import ephemeral

TTL_SECONDS = 5 * 60


@dataclass
class FormState:
    errors: dict[str, str] = field(default_factory=dict)  # field name -> message key
    values: dict[str, str] = field(default_factory=dict)
    notice: str | None = None  # message key


def _key(interaction_id: str, page: str) -> str:
    return f"ixform:{interaction_id}:{page}"


def remember(interaction_id: str, page: str, state: FormState) -> None:
    """Keep ``state`` for the next GET of ``page`` of this interaction."""
    ephemeral().put(
        _key(interaction_id, page),
        {"errors": state.errors, "values": state.values, "notice": state.notice},
        TTL_SECONDS,
    )


def recall(interaction_id: str, page: str) -> FormState:
    """The state left for ``page`` by the last POST (removed now), or an empty one."""
    data = ephemeral().take(_key(interaction_id, page))
    if not data:
        return FormState()
    return FormState(
        errors=dict(data.get("errors") or {}),
        values=dict(data.get("values") or {}),
        notice=data.get("notice"),
    )
