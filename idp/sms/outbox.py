"""Writing an SMS to the outbox (kind ``sms``), in the transaction of its cause;
delivered at least once, with retries and back-off, like mail
(:mod:`idp.mail.outbox`), by the sender of :mod:`idp.sms.transport`. The text is
sealed with the master key while it waits and dropped once a real sender took it."""

from __future__ import annotations

from datetime import datetime

from idp.mail import outbox

MAX_TEXT = 480  # three concatenated SMS segments at most


def enqueue_sms(
    to: str, text: str, discard_after: datetime | None = None, commit: bool = True
) -> str:
    """Write the SMS ``text`` for the number ``to`` (E.164) to the outbox; the message
    id (:func:`idp.mail.outbox.deliver_soon` it once committed). ``commit=False``
    stages it in the caller's transaction. A message still undelivered after
    ``discard_after`` (an expired code) is dropped instead of being sent late."""
    if len(text) > MAX_TEXT:
        raise ValueError("SMS text too long")
    payload = {"to": to, "subject": "SMS"}
    return outbox.enqueue("sms", payload, {"text": text}, discard_after, commit)
