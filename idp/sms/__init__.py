"""SMS: registration codes of invitations (``idp.accounts.invites``), delivered
through the outbox with retries like mail (:mod:`idp.sms.outbox`), by a pluggable
sender (:mod:`idp.sms.transport`)."""
