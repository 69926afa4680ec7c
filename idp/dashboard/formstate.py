"""Post/Redirect/Get for the dashboard: what the GET after a POST must show (field
errors, the values typed, a notice) is kept for a few minutes in the ephemeral store
under the session's id hash, never in a client-side cookie, and read exactly once
(:func:`idp.login.formstate.remember_for_session`)."""

from __future__ import annotations

from idp.login.formstate import (
    FormState,
    recall_for_session,
    remember_for_session,
)

KIND = "acctform"


def remember(session_id_hash: str, state: FormState) -> None:
    """Keep ``state`` for the next dashboard page of this session."""
    remember_for_session(KIND, session_id_hash, state)


def recall(session_id_hash: str) -> FormState:
    """The state the last POST of this session left (removed now), or an empty one."""
    return recall_for_session(KIND, session_id_hash)
