"""Outgoing mail: message rendering (:mod:`idp.mail.render`), the database outbox
with retries (:mod:`idp.mail.outbox`), SMTP delivery (:mod:`idp.mail.smtp`) and the
development-only outbox page (:mod:`idp.mail.dev_outbox`)."""
