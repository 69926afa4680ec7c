"""WSGI entry point for other WSGI servers: ``gunicorn 'idp.wsgi:app'``.

``idp serve`` is the supported way to run Unitgate. This module exists for platforms
that want a WSGI path; like ``idp serve`` it starts the mail outbox, webhook delivery
and back-channel logout threads, the sweeper of sessions that ended unseen and the
console's CSV imports in the process that imports it (do not combine with gunicorn's
``--preload``: the threads would start in the master, not in the workers).
"""

from __future__ import annotations

from idp.accounts.import_jobs import start_thread as start_imports
from idp.app import create_app
from idp.cli.serve import start_outbox
from idp.domains.scheduler import start_domain_scheduler
from idp.interaction.rp_logout import start_delivery_thread as start_logouts
from idp.interaction.rp_logout import start_sweeper_thread
from idp.ldap.scheduler import start_ldap_scheduler
from idp.webhooks.delivery import start_delivery_thread as start_webhooks

app = create_app()
start_outbox(app)
start_ldap_scheduler(app)
start_domain_scheduler(app)
start_webhooks(app)
start_logouts(app)
start_sweeper_thread(app)
start_imports(app)
