"""Returning employees for the sign-in benchmark: ``python -m bench.seed N [START]``
(with the bench server's ``IDP_*`` environment) creates the accounts
``returning-<START>`` .. ``returning-<START+N-1>`` at the demo domain, each with a
complete wallet (given and family name, every required field of the demo unit) and
a member of the demo unit, the way a first e-mail-code sign-in leaves them. None has
consented to any merchant, so each is asked for consent on their next sign-in at the
demo client. Run ``idp init`` and ``idp demo`` first.

Unitgate's own API does the work: ``accounts.create_wallet`` writes each account
(with its ``account.create`` audit event); ``domain_rules.explain`` decides once which
unit and roles an address of the demo domain joins (refusing to seed if none), and
each account gets that membership with the ``membership.auto_join`` audit event
through ``idp.accounts.accesses.join``, as ``domain_rules.apply_auto_join`` writes it
(calling that per account would repeat the same domain-rule queries thousands of
times).

Speed (thousands in a few seconds): the repositories commit once per call; here one
app context runs them with the session's ``commit`` turned into a no-op and commits
every :data:`BATCH` accounts itself (SQLAlchemy then inserts them in batches).
Nothing else uses that session meanwhile; an error rolls back the open batch.

Re-running is safe: accounts already present at the start of the range are skipped
(``python -m bench.seed 3000`` after ``... 2000`` adds 1000 more).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

PREFIX = "returning"
DOMAIN = "acme-demo.example"  # idp.config.demo.DEMO_DOMAIN (not imported: drivers stay light)
BATCH = 500
ACTOR = "bench seed"


def email(k: int, domain: str = DOMAIN) -> str:
    """The address of the ``k``-th seeded returning employee."""
    return f"{PREFIX}-{k}@{domain}"


@contextmanager
def _batched() -> Iterator[Callable[[], None]]:
    """The app context's session with ``commit`` a no-op meanwhile; yields the real
    commit and commits at the end. Uncommitted rows are rolled back on an error."""
    from idp.store.db import db

    session = db.session()
    commit = session.commit
    session.commit = lambda: None  # type: ignore[method-assign]
    try:
        yield commit
        commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        del session.commit


def seed(count: int, start: int = 0, domain: str = DOMAIN) -> int:
    """Create the returning employees ``start`` .. ``start + count - 1`` that do not
    exist yet (those at the start of the range that do are skipped); returns how many
    were created. Needs an app context of the bench's app. RuntimeError when an
    address of ``domain`` joins no unit (``idp demo`` not run): the journey would not
    be a returning employee's then."""
    from idp.accounts import accesses
    from idp.accounts import lifecycle as accounts
    from idp.domains import rules as domain_rules

    first = start
    while first < start + count and accounts.by_email(email(first, domain)) is not None:
        first += 1
    if first == start + count:
        return 0
    rule = domain_rules.explain(email(first, domain))
    if not rule.joins or rule.unit_id is None:
        raise RuntimeError(f"{email(first, domain)} joins no unit: run `idp demo` first")
    fields = accounts.unit_fields_for_new_wallet(email(first, domain))
    profile: dict[str, Any] = {
        "given_name": "Bench",
        "family_name": "Returning",
        "extra": {f.name: "Bench" for f in fields if f.required},
    }
    details = {"unit": rule.unit_slug, "roles": list(rule.roles), "claim": rule.claim}
    with _batched() as commit:
        for k in range(first, start + count):
            account = accounts.create_wallet(email(k, domain), profile, "en")
            accesses.join(account.id, rule.unit_id, rule.roles, ACTOR,
                          "membership.auto_join", dict(details), facts=profile)
            if (k - first + 1) % BATCH == 0:
                commit()
    return start + count - first


def main() -> None:
    """``python -m bench.seed N [START]``: seed and say how many and how fast."""
    if len(sys.argv) < 2 or not sys.argv[1].isdigit():
        raise SystemExit("usage: python -m bench.seed N [START]")
    count = int(sys.argv[1])
    start = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    from idp.app import create_app

    started = time.perf_counter()
    with create_app().app_context():
        created = seed(count, start)
    print(
        f"bench.seed: {created} returning employees created ({count - created} existed)"
        f" in {time.perf_counter() - started:.1f} s"
    )


if __name__ == "__main__":
    main()
