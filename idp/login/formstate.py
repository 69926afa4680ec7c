"""Post/Redirect/Get for the login pages: every POST answers 303, so what the next
GET must show (field errors, the values typed, a notice such as "a new code was
sent") travels in the interaction itself (``Interaction.forms``, in the ephemeral
store, never in a client-side cookie) and is read exactly once.

Keeping it in the interaction costs nothing on the usual path: a page without
saved state reads nothing extra, and a POST that leaves state saves the interaction
it would have saved anyway."""

from __future__ import annotations

from dataclasses import dataclass, field

from idp.interaction import pending as interaction
from idp.interaction.pending import Interaction
from idp.services import ephemeral

SESSION_TTL_SECONDS = 5 * 60


@dataclass
class FormState:
    errors: dict[str, str] = field(default_factory=dict)  # field name -> message key
    values: dict[str, str] = field(default_factory=dict)
    notice: str | None = None  # message key


def remember(ix: Interaction, page: str, state: FormState) -> None:
    """Keep ``state`` for the next GET of ``page`` of ``ix`` (saves ``ix``)."""
    ix.forms[page] = {"errors": state.errors, "values": state.values, "notice": state.notice}
    interaction.save(ix)


def recall(ix: Interaction, page: str) -> FormState:
    """The state left for ``page`` by the last POST (removed now, ``ix`` saved), or an
    empty one (nothing read or written)."""
    data = ix.forms.pop(page, None)
    if not data:
        return FormState()
    interaction.save(ix)
    return FormState(
        errors=dict(data.get("errors") or {}),
        values=dict(data.get("values") or {}),
        notice=data.get("notice"),
    )


def remember_for_session(kind: str, session_id_hash: str, state: FormState) -> None:
    """Keep ``state`` for the next page of kind ``kind`` (``acctform`` for the
    dashboard, ``consoleform`` for the console) of the browser session whose id hash
    is ``session_id_hash``: in the ephemeral store for a few minutes, never in a
    client-side cookie."""
    ephemeral().put(
        f"{kind}:{session_id_hash}",
        {"errors": state.errors, "values": state.values, "notice": state.notice},
        SESSION_TTL_SECONDS,
    )


def recall_for_session(kind: str, session_id_hash: str) -> FormState:
    """The state the last POST of this session left for ``kind`` (removed now, read
    exactly once), or an empty one."""
    data = ephemeral().take(f"{kind}:{session_id_hash}")
    if not data:
        return FormState()
    return FormState(
        errors=dict(data.get("errors") or {}),
        values=dict(data.get("values") or {}),
        notice=data.get("notice"),
    )
