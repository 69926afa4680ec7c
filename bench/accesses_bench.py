"""Benchmark: access lists and bulk actions at scale (issue 12, "Scale").

Targets, on PostgreSQL with 10,000 customers and 100,000 accesses:

* a filtered list page answers in under 50 ms server time at p95;
* a bulk action over 10,000 accesses finishes in under 30 s with constant memory.

A fresh database of its own (``idp init`` migrates it) is filled with
:data:`CUSTOMERS` customers of :data:`PER_CUSTOMER` accesses each (one account per
access: roles, statuses, last sign-ins and names spread over the rows), written with
bulk inserts. The app then runs *in this process*: every request goes through the
Flask test client with an operator admin client's bearer token, so the time
measured is the server's own (routing, token check, authorisation, the queries,
serialisation) without a network or an HTTP server in front.

* Lists: each scenario asks :data:`REQUESTS` pages (limit 50), varying its
  parameter per request, with and without the total (a count reads every match);
  p50, p95 and max in milliseconds.
* Bulk: ``POST /api/v1/accesses/bulk`` suspends every access of one e-mail domain
  (:data:`BULK` of them, spread over 1,000 customers), timed whole; the resident set
  is sampled every 20 ms meanwhile, and the same is done first for a domain of a
  fifth of the size: constant memory means the same growth for both.

Run it alone: ``.venv/bin/python -m bench.accesses_bench`` (or through the harness:
``python -m bench --only accesses``); ``--customers`` scales the data down for a
quick look.
"""

from __future__ import annotations

import base64
import random
import statistics
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.scale_app import list_table, scale_app
from bench.scale_app import main as scale_main

ROOT = Path(__file__).resolve().parent.parent
BENCH_DB = "unitgate_bench_accesses"
CUSTOMERS = 10_000
PER_CUSTOMER = 10
REQUESTS = 200
BULK = 10_000
SMALL_BULK = 2_000
LIST_TARGET_MS = 50.0
BULK_TARGET_S = 30.0
GIVEN = ["Anna", "Ben", "Clara", "David", "Emma", "Felix", "Greta", "Hugo", "Ida", "Jonas",
         "Klara", "Lukas", "Mia", "Noah", "Olga", "Paul", "Rosa", "Simon", "Tara", "Uwe"]
FAMILY = ["Meyer", "Schmidt", "Fischer", "Weber", "Wagner", "Becker", "Schulz", "Hoffmann",
          "Koch", "Richter", "Klein", "Wolf", "Neumann", "Schwarz", "Zimmermann", "Braun",
          "Krüger", "Hofmann", "Hartmann", "Lange"]
ROLES = [["main_user"], ["commercial_contact"], ["operational_contact"]]


def _domain(customer: int, bulk_customers: int, small_customers: int) -> str:
    if customer < bulk_customers:
        return "bulk.example"
    if customer < bulk_customers + small_customers:
        return "small.example"
    return f"c{customer % 500}.example"


def seed(customers: int, per_customer: int, bulk: int, small: int) -> dict[str, Any]:
    """Fill the app's database with bulk inserts; how long it took."""
    from idp.store.db import db
    from idp.store.models import Access, Account, Unit

    rng = random.Random(12)
    now = datetime.now(UTC)
    started = time.perf_counter()
    bulk_customers, small_customers = bulk // per_customer, small // per_customer
    units: list[dict[str, Any]] = []
    accounts: list[dict[str, Any]] = []
    accesses: list[dict[str, Any]] = []
    engine = db.engine

    def flush(final: bool = False) -> None:
        if not accesses or (len(accesses) < 20_000 and not final):
            return
        with engine.begin() as conn:
            if units:
                conn.execute(Unit.__table__.insert(), units)
            conn.execute(Account.__table__.insert(), accounts)
            conn.execute(Access.__table__.insert(), accesses)
        units.clear()
        accounts.clear()
        accesses.clear()

    n = 0
    for c in range(customers):
        unit_id = uuid.uuid4().hex
        units.append({"id": unit_id, "name": f"Customer {c}", "slug": f"customer-{c}",
                      "kind": "company", "require_totp": False, "created_at": now,
                      "status": "active", "address": {}, "given_name": "", "family_name": ""})
        domain = _domain(c, bulk_customers, small_customers)
        for k in range(per_customer):
            account_id = uuid.uuid4().hex
            given, family = rng.choice(GIVEN), rng.choice(FAMILY)
            accounts.append({
                "id": account_id, "email": f"{given.lower()}.{family.lower()}.{n}@{domain}",
                "email_verified": True, "given_name": given, "family_name": family,
                "field_owners": {}, "status": "active", "failed_code_attempts": 0,
                "version": 1, "created_at": now, "updated_at": now,
            })
            roll = rng.random()
            status = "suspended" if roll < 0.08 else "invited" if roll < 0.12 else "active"
            if domain in ("bulk.example", "small.example"):
                status = "active"
            signed = None if rng.random() < 0.3 else now - timedelta(days=rng.randint(0, 400))
            accesses.append({
                "id": uuid.uuid4().hex, "account_id": account_id, "unit_id": unit_id,
                "roles": ROLES[k] if k < len(ROLES) else ["employee"], "status": status,
                "created_at": now, "created_by_kind": "system", "extra": {},
                "field_owners": {}, "platform_access": True, "last_signin_at": signed,
            })
            n += 1
        flush()
    flush(final=True)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        from sqlalchemy import text

        conn.execute(text("VACUUM ANALYZE"))
    return {"customers": customers, "accesses": n, "seconds": time.perf_counter() - started}


def _token(http: Any) -> str:
    from idp.rights import admin_clients

    made = admin_clients.create(None, actor="bench")
    basic = base64.b64encode(f"{made.client_id}:{made.client_secret}".encode()).decode()
    resp = http.post("/token", data={"grant_type": "client_credentials", "scope": "admin"},
                     headers={"Authorization": f"Basic {basic}"})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return str(resp.get_json()["access_token"])


def _stats(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p95 = ordered[max(0, int(len(ordered) * 0.95) - 1)]
    return {"p50_ms": statistics.median(ordered) * 1000, "p95_ms": p95 * 1000,
            "max_ms": ordered[-1] * 1000, "requests": len(ordered)}


def lists(http: Any, headers: dict[str, str], unit_ids: list[str], requests: int
          ) -> list[dict[str, Any]]:
    """Each list scenario: ``requests`` pages, one parameter varied per request."""
    rng = random.Random(7)
    now = datetime.now(UTC)
    scenarios: list[tuple[str, Any]] = [
        ("all customers, first page", lambda i: ("/api/v1/accesses", {})),
        ("all customers, status=suspended", lambda i: ("/api/v1/accesses",
                                                       {"status": "suspended"})),
        ("all customers, role=commercial_contact", lambda i: (
            "/api/v1/accesses", {"role": "commercial_contact"})),
        ("all customers, q=<name prefix>", lambda i: (
            "/api/v1/accesses", {"q": rng.choice(GIVEN + FAMILY)[: rng.randint(2, 5)]})),
        ("all customers, email_domain=<1 of 500>", lambda i: (
            "/api/v1/accesses", {"email_domain": f"c{rng.randint(0, 499)}.example"})),
        ("all customers, signed in before <date>, active", lambda i: (
            "/api/v1/accesses", {"status": "active", "signed_in_before":
                                 (now - timedelta(days=rng.randint(30, 390))).isoformat()})),
        ("all customers, never signed in, q=<prefix>", lambda i: (
            "/api/v1/accesses", {"never_signed_in": "true",
                                 "q": rng.choice(GIVEN)[:3]})),
        ("one customer, sub-units included", lambda i: (
            f"/api/v1/units/{rng.choice(unit_ids)}/accesses", {"include_sub_units": "true"})),
        ("one customer, status=active, role=employee", lambda i: (
            f"/api/v1/units/{rng.choice(unit_ids)}/accesses",
            {"status": "active", "role": "employee"})),
    ]
    out = []
    for name, make in scenarios:
        for with_total in (True, False):
            if not with_total and not name.startswith("all customers"):
                continue
            samples = []
            for i in range(requests):
                path, query = make(i)
                query = {**query, "limit": 50, "with_total": str(with_total).lower()}
                started = time.perf_counter()
                resp = http.get(path, query_string=query, headers=headers)
                samples.append(time.perf_counter() - started)
                assert resp.status_code == 200, (path, query, resp.get_data(as_text=True)[:300])
            label = name + ("" if with_total else " (no total)")
            out.append({"scenario": label, **_stats(samples)})
    # walking on: page n+1 of a long walk (the cursor's keyset seek)
    samples = []
    cursor = None
    for _ in range(requests):
        query: dict[str, Any] = {"limit": 50, "with_total": "false"}
        if cursor:
            query["cursor"] = cursor
        started = time.perf_counter()
        resp = http.get("/api/v1/accesses", query_string=query, headers=headers)
        samples.append(time.perf_counter() - started)
        cursor = resp.get_json()["next_cursor"]
    out.append({"scenario": "all customers, the next page of a walk (no total)",
                **_stats(samples)})
    return out


def _rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def bulk_run(http: Any, headers: dict[str, str], domain: str, expected: int) -> dict[str, Any]:
    """Suspend every access of ``domain`` in one bulk call: seconds, RSS growth."""
    peak = [_rss_kib()]
    start_rss = peak[0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.02):
            peak[0] = max(peak[0], _rss_kib())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    resp = http.post("/api/v1/accesses/bulk", headers=headers, json={
        "action": "suspend", "selection": {"filter": {"email_domain": domain}}})
    seconds = time.perf_counter() - started
    stop.set()
    sampler.join()
    body = resp.get_json()
    assert resp.status_code == 200, resp.get_data(as_text=True)[:300]
    return {"domain": domain, "expected": expected, "counts": body["counts"],
            "seconds": seconds, "rss_growth_mib": (peak[0] - start_rss) / 1024,
            "per_item_ms": seconds * 1000 / max(1, expected)}


def run(customers: int = CUSTOMERS, requests: int = REQUESTS, keep: bool = False
        ) -> dict[str, Any]:
    with scale_app(BENCH_DB, keep) as (app, url):
        bulk = min(BULK, customers * PER_CUSTOMER // 5)
        small = min(SMALL_BULK, bulk // 5)
        with app.app_context():
            seeded = seed(customers, PER_CUSTOMER, bulk, small)
            if keep:
                print(f"seeded and kept: {url}", flush=True)
                return {"seed": seeded}
            http = app.test_client()
            headers = {"Authorization": f"Bearer {_token(http)}"}
            from sqlalchemy import select

            from idp.store.db import db
            from idp.store.models import Unit

            unit_ids = list(db.session.scalars(select(Unit.id).limit(2000)))
            db.session.remove()
            http.get("/api/v1/accesses", headers=headers)  # warm up
            pages = lists(http, headers, unit_ids, requests)
            small_run = bulk_run(http, headers, "small.example", small)
            big_run = bulk_run(http, headers, "bulk.example", bulk)
        return {"backend": "postgres", "seed": seeded, "lists": pages,
                "bulk": [small_run, big_run], "requests": requests}


def describe(result: dict[str, Any]) -> str:
    seed_ = result["seed"]
    lines = [
        f"Access lists and bulk actions on PostgreSQL: {seed_['customers']:,} customers, "
        f"{seed_['accesses']:,} accesses (seeded in {seed_['seconds']:.0f} s); in-process "
        f"server time per request (Flask test client, operator token), "
        f"{result['requests']} requests per scenario, limit 50. "
        f"Target: p95 < {LIST_TARGET_MS:.0f} ms.",
        "",
        *list_table(result["lists"], LIST_TARGET_MS),
    ]
    lines += ["", f"Bulk suspend by filter (target: 10,000 in < {BULK_TARGET_S:.0f} s, "
              "constant memory; each customer's main user is refused as its last one):", "",
              "| Accesses | done | refused | seconds | ms per access | peak RSS growth MiB |",
              "|---:|---:|---:|---:|---:|---:|"]
    for row in result["bulk"]:
        lines.append(f"| {row['expected']:,} | {row['counts']['done']:,} | "
                     f"{row['counts']['refused']:,} | {row['seconds']:.1f} | "
                     f"{row['per_item_ms']:.2f} | {row['rss_growth_mib']:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    return scale_main(__doc__, run, describe, CUSTOMERS, REQUESTS, argv)


if __name__ == "__main__":
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
