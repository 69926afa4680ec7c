"""Benchmark: the customer list at scale (issue 12, "Scale").

Target, on PostgreSQL with 10,000 customers and 100,000 accesses: a filtered list
page (``GET /api/v1/customers``) answers in under 50 ms server time at p95.

A fresh database of its own (``idp init`` migrates it) is filled with bulk inserts:

* :data:`CUSTOMERS` customers, one in five a person, one in twenty blocked, the
  companies with a VAT id; one customer in ten has a sub-unit, and one in twenty of
  those a sub-unit below it (activity counts sign-ins through the whole tree);
* :data:`PER_CUSTOMER` accesses per customer (one account each), spread over the
  customer's tree;
* activity by customer: about 45 % active (a sign-in in the last 90 days, for some
  only through a sub-unit), 35 % dormant (older sign-ins only), 20 % never.

The app then runs *in this process*, like bench/accesses_bench.py: every request
goes through the Flask test client with an operator admin client's bearer token, so
the time measured is the server's own (routing, token check, authorisation, the
queries, serialisation) without a network or an HTTP server in front. Each scenario
asks :data:`REQUESTS` pages (limit 50), varying its parameter per request; p50, p95
and max in milliseconds.

Run it alone: ``.venv/bin/python -m bench.customers_bench`` (or through the harness:
``python -m bench --only customers``); ``--customers`` scales the data down for a
quick look, ``--keep`` only seeds (to explain queries).
"""

from __future__ import annotations

import os
import random
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.accesses_bench import FAMILY, GIVEN, _stats, _token
from bench.scale_app import list_table, scale_app
from bench.scale_app import main as scale_main

ROOT = Path(__file__).resolve().parent.parent
BENCH_DB = os.environ.get("IDP_BENCH_CUSTOMERS_DB", "unitgate_bench_customers")
CUSTOMERS = 10_000
PER_CUSTOMER = 10
REQUESTS = 200
LIST_TARGET_MS = 50.0
WORDS = ["Alpen", "Nord", "Süd", "Rhein", "Elbe", "Main", "Berg", "Tal", "Stadt", "Land",
         "Bau", "Logistik", "Handel", "Technik", "Energie", "Medien", "Holz", "Glas",
         "Stahl", "Druck", "Optik", "Pharma", "Agrar", "Daten", "Wasser"]
FORMS = ["GmbH", "AG", "KG", "GmbH & Co. KG", "eG", "UG"]


def _signin(rng: random.Random, now: datetime, profile: str) -> datetime | None:
    """One access's last sign-in for a customer of activity ``profile``."""
    if profile == "never" or rng.random() < 0.3:
        return None
    if profile == "dormant":
        return now - timedelta(days=rng.randint(91, 700))
    return now - timedelta(days=rng.randint(0, 400))


def seed(customers: int, per_customer: int) -> dict[str, Any]:
    """Fill the app's database with bulk inserts; how long it took and what it made."""
    from sqlalchemy import text

    from idp.store.db import db
    from idp.store.models import Access, Account, Unit

    rng = random.Random(12)
    now = datetime.now(UTC)
    started = time.perf_counter()
    units: list[dict[str, Any]] = []
    accounts: list[dict[str, Any]] = []
    accesses: list[dict[str, Any]] = []
    engine = db.engine
    made = {"customers": 0, "sub_units": 0, "accesses": 0}

    def flush(final: bool = False) -> None:
        if not accesses or (len(accesses) < 20_000 and not final):
            return
        with engine.begin() as conn:
            conn.execute(Unit.__table__.insert(), units)
            conn.execute(Account.__table__.insert(), accounts)
            conn.execute(Access.__table__.insert(), accesses)
        units.clear()
        accounts.clear()
        accesses.clear()

    def unit(name: str, slug: str, parent: str | None, **data: Any) -> str:
        unit_id = uuid.uuid4().hex
        units.append({"id": unit_id, "name": name, "slug": slug, "parent_id": parent,
                      "kind": "company", "require_totp": False, "created_at": now,
                      "status": "active", "address": {}, "vat_id": None, "given_name": "",
                      "family_name": "", **data})
        return unit_id

    for c in range(customers):
        created = now - timedelta(days=rng.randint(0, 1500))
        status = "blocked" if rng.random() < 0.05 else "active"
        if rng.random() < 0.2:
            given, family = rng.choice(GIVEN), rng.choice(FAMILY)
            root = unit(f"{given} {family}", f"person-{c}", None, kind="person",
                        given_name=given, family_name=family, created_at=created,
                        status=status)
        else:
            name = f"{rng.choice(WORDS)} {rng.choice(WORDS)} {rng.choice(FORMS)} {c}"
            root = unit(name, f"customer-{c}", None, created_at=created, status=status,
                        vat_id=f"DE{rng.randint(10**8, 10**9 - 1)}",
                        address={"city": rng.choice(WORDS), "country": "DE"})
        tree = [root]
        if c % 10 == 3:
            tree.append(unit(f"Sales {c}", f"sales-{c}", root, status=status))
            if c % 200 == 3:
                tree.append(unit(f"Sales North {c}", f"sales-north-{c}", tree[1],
                                 status=status))
        roll = rng.random()
        profile = "active" if roll < 0.45 else "dormant" if roll < 0.8 else "never"
        signins = []
        for k in range(per_customer):
            account_id = uuid.uuid4().hex
            given, family = rng.choice(GIVEN), rng.choice(FAMILY)
            accounts.append({
                "id": account_id,
                "email": f"{given.lower()}.{family.lower()}.{made['accesses']}@c{c}.example",
                "email_verified": True, "given_name": given, "family_name": family,
                "field_owners": {}, "status": "active", "failed_code_attempts": 0,
                "version": 1, "created_at": now, "updated_at": now,
            })
            signins.append(_signin(rng, now, profile))
            accesses.append({
                "id": uuid.uuid4().hex, "account_id": account_id,
                # the customer's own first, then its sub-units
                "unit_id": tree[0] if k < per_customer - 4 else tree[k % len(tree)],
                "roles": ["main_user"] if k == 0 else ["employee"], "status": "active",
                "created_at": now, "created_by_kind": "system", "extra": {},
                "field_owners": {}, "platform_access": True, "last_signin_at": None,
            })
            made["accesses"] += 1
        if profile == "active":  # at least one recent sign-in (the last one: may be a sub-unit's)
            signins[-1] = now - timedelta(days=rng.randint(0, 89))
        for row, when in zip(accesses[-per_customer:], signins, strict=True):
            row["last_signin_at"] = when
        made["customers"] += 1
        made["sub_units"] += len(tree) - 1
        flush()
    flush(final=True)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    return {**made, "seconds": time.perf_counter() - started}


def lists(http: Any, headers: dict[str, str], names: list[tuple[str, str]], requests: int,
          totals: tuple[bool | None, ...] = (None,)) -> list[dict[str, Any]]:
    """Each scenario: ``requests`` pages, one parameter varied per request; once per
    entry of ``totals`` (None: the list's default, else ``with_total``)."""
    from idp.api import pages

    rng = random.Random(7)
    now = datetime.now(UTC)
    words = [w.lower() for w in WORDS + FAMILY]

    def deep(i: int) -> dict[str, Any]:  # a page far into the list (cursor of row k)
        name, unit_id = names[rng.randint(len(names) // 2, len(names) - 60)]
        return {"cursor": pages.encode([name, unit_id])}

    scenarios: list[tuple[str, Any]] = [
        ("first page", lambda i: {}),
        ("q=<part of a name>", lambda i: {"q": rng.choice(words)[1: rng.randint(4, 6)]}),
        ("q=<VAT id digits>", lambda i: {"q": str(rng.randint(100, 999))}),
        ("kind=person", lambda i: {"kind": "person"}),
        ("kind=company", lambda i: {"kind": "company"}),
        ("status=blocked", lambda i: {"status": "blocked"}),
        ("activity=active", lambda i: {"activity": "active"}),
        ("activity=dormant", lambda i: {"activity": "dormant"}),
        ("activity=never", lambda i: {"activity": "never"}),
        ("activity=active, kind=company, q=<part>", lambda i: {
            "activity": "active", "kind": "company", "q": rng.choice(words)[:3]}),
        ("activity=dormant, status=blocked", lambda i: {
            "activity": "dormant", "status": "blocked"}),
        ("created_after=<date>", lambda i: {
            "created_after": (now - timedelta(days=rng.randint(30, 1400))).isoformat()}),
        ("a deep page (cursor past the middle)", deep),
        ("a deep page, activity=never", lambda i: {**deep(i), "activity": "never"}),
    ]
    out = []
    for name, make in scenarios:
        for with_total in totals:
            samples = []
            for i in range(requests):
                query = {**make(i), "limit": 50}
                if with_total is not None:
                    query["with_total"] = str(with_total).lower()
                started = time.perf_counter()
                resp = http.get("/api/v1/customers", query_string=query, headers=headers)
                samples.append(time.perf_counter() - started)
                assert resp.status_code == 200, (query, resp.get_data(as_text=True)[:300])
            label = name + {None: "", True: " (with total)", False: " (no total)"}[with_total]
            out.append({"scenario": label, **_stats(samples)})
    # walking on: page n+1 of a long walk (the cursor's keyset seek)
    samples = []
    cursor = None
    for _ in range(requests):
        query: dict[str, Any] = {"limit": 50}
        if cursor:
            query["cursor"] = cursor
        started = time.perf_counter()
        resp = http.get("/api/v1/customers", query_string=query, headers=headers)
        samples.append(time.perf_counter() - started)
        cursor = resp.get_json()["next_cursor"]
    out.append({"scenario": "the next page of a walk", **_stats(samples)})
    return out


def _supports_with_total(http: Any, headers: dict[str, str]) -> bool:
    resp = http.get("/api/v1/customers", query_string={"limit": 1, "with_total": "true"},
                    headers=headers)
    return bool(resp.status_code == 200)


def run(customers: int = CUSTOMERS, requests: int = REQUESTS, keep: bool = False
        ) -> dict[str, Any]:
    with scale_app(BENCH_DB, keep) as (app, url), app.app_context():
        seeded = seed(customers, PER_CUSTOMER)
        if keep:
            print(f"seeded and kept: {url}", flush=True)
            return {"seed": seeded}
        http = app.test_client()
        headers = {"Authorization": f"Bearer {_token(http)}"}
        from sqlalchemy import select

        from idp.store.db import db
        from idp.store.models import Unit

        names = [(row[0], row[1]) for row in db.session.execute(
            select(Unit.name, Unit.id).where(Unit.parent_id.is_(None))
            .order_by(Unit.name, Unit.id))]
        db.session.remove()
        http.get("/api/v1/customers", headers=headers)  # warm up
        totals: tuple[bool | None, ...] = (None,)
        if _supports_with_total(http, headers):
            totals = (True, False)
        pages = lists(http, headers, names, requests, totals)
    return {"backend": "postgres", "seed": seeded, "lists": pages, "requests": requests}


def describe(result: dict[str, Any]) -> str:
    seed_ = result["seed"]
    lines = [
        f"Customer list on PostgreSQL: {seed_['customers']:,} customers "
        f"({seed_['sub_units']:,} sub-units), {seed_['accesses']:,} accesses (seeded in "
        f"{seed_['seconds']:.0f} s); in-process server time per request (Flask test "
        f"client, operator token), {result['requests']} requests per scenario, limit 50. "
        f"Target: p95 < {LIST_TARGET_MS:.0f} ms.",
        "",
        *list_table(result["lists"], LIST_TARGET_MS),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    return scale_main(__doc__, run, describe, CUSTOMERS, REQUESTS, argv)


if __name__ == "__main__":
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
