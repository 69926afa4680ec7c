"""Every per-process cache (:class:`idp.process_cache.ProcessCache`) relies on the
commit hook, which sees unit-of-work writes but not 2.0-style bulk statements
(``update(Model)``, ``delete(Model)``, ``Model.__table__``): such a write of a
watched table would leave this process's caches stale for up to 2 s. This test
finds them in the code, for every model any cache watches."""

from __future__ import annotations

import re
from pathlib import Path

# Importing the modules that define caches registers what they watch.
import idp.domains.lookup
import idp.login.views_ldap
import idp.provisioning.scim_tokens
import idp.purchases.payment_methods
import idp.release.clients  # noqa: F401
from idp.store import commit_hooks
from idp.store.models import Budget, ScimToken, Unit

ROOT = Path(__file__).resolve().parent.parent

# Bulk writes that leave every cached value true, each with the reason.
ALLOWED = {
    # Only ``last_used_at``, conditioned in SQL: a cached older last use costs at most
    # one more conditional UPDATE, never a wrong answer.
    ("idp/store/scim_repo.py", ScimToken.__name__),
    # Reads only: the units table in the access lists' and the granting rule's SQL.
    ("idp/store/access_lists_repo.py", Unit.__name__),
    ("idp/store/accesses_repo.py", Unit.__name__),
    # SQLite's budget lock: an UPDATE that sets unit_id to itself (no value changes).
    ("idp/store/purchases_repo.py", Budget.__name__),
}
# A file that writes a watched table in bulk and reports it to the commit hooks
# (``commit_hooks.note_bulk_write``) keeps the caches true.
NOTED = re.compile(r"commit_hooks\.note_bulk_write\(")


def test_no_bulk_statement_writes_a_watched_table() -> None:
    offenders = []
    for model in sorted(commit_hooks.watched_models(), key=lambda m: m.__name__):
        name = model.__name__
        bulk = re.compile(rf"\b(update|delete|insert)\(\s*{name}\b|\b{name}\.__table__")
        for folder in ("idp", "connectors", "scim"):
            for path in (ROOT / folder).rglob("*.py"):
                where = str(path.relative_to(ROOT))
                if "migrations" in path.parts or (where, name) in ALLOWED:
                    continue
                text = path.read_text()
                if bulk.search(text) and not NOTED.search(text):
                    offenders.append(f"{where}: {name}")
    assert offenders == []
