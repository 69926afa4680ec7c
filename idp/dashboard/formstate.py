"""Post/Redirect/Get for the dashboard: what the GET after a POST must show (field
errors, the values typed, a notice) is kept for a few minutes in the ephemeral store
under the session's id hash, never in a client-side cookie, and read exactly once."""

from __future__ import annotations

from idp.login.formstate import FormState
from idp.services import ephemeral

TTL_SECONDS = 5 * 60


def _key(session_id_hash: str) -> str:
    return f"acctform:{session_id_hash}"


def remember(session_id_hash: str, state: FormState) -> None:
    """Keep ``state`` for the next dashboard page of this session."""
    ephemeral().put(
        _key(session_id_hash),
        {"errors": state.errors, "values": state.values, "notice": state.notice},
        TTL_SECONDS,
    )


def recall(session_id_hash: str) -> FormState:
    """The state the last POST of this session left (removed now), or an empty one."""
    data = ephemeral().take(_key(session_id_hash))
    if not data:
        return FormState()
    return FormState(
        errors=dict(data.get("errors") or {}),
        values=dict(data.get("values") or {}),
        notice=data.get("notice"),
    )
