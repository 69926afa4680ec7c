"""``idp serve`` runs the domain re-check thread in its workers: a pending claim whose
TXT record is published becomes verified without anybody running
``idp domains check`` (real gunicorn process, real DNS server on loopback)."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from tests.support.dns import DnsServer
from tests.support.processes import idp_env, idp_serve, run_idp


def _state(db_file: Path, name: str) -> str | None:
    with sqlite3.connect(db_file, timeout=10) as conn:
        row = conn.execute("SELECT state FROM domains WHERE name = ?", (name,)).fetchone()
    return None if row is None else str(row[0])


def test_served_workers_verify_a_published_claim(tmp_path: Path, dns_server: DnsServer) -> None:
    db_file = tmp_path / "unitgate.db"
    env = idp_env(
        database_url=f"sqlite:///{db_file}",
        master_key_file=str(tmp_path / "master.key"),
        issuer="http://127.0.0.1:5000",
        dns_resolver=dns_server.address,
        dns_timeout_seconds="1",
    )
    for args in (["init"], ["units", "create", "--name", "ACME", "--slug", "acme", "--json"]):
        done = run_idp(args, env)
        assert done.returncode == 0, done.stderr
    added = run_idp(["domains", "add", "--unit", "acme", "acme.example", "--json"], env)
    assert added.returncode == 0, added.stderr
    record = json.loads(added.stdout)
    dns_server.set_txt(record["record_name"], record["value"])
    assert _state(db_file, "acme.example") == "pending"
    with idp_serve(env, tmp_path / "serve.log", workers=1) as served:
        for _ in range(600):  # wait for the worker's first re-check, not for a time
            if _state(db_file, "acme.example") != "pending":
                break
            time.sleep(0.1)
        assert served.proc.poll() is None
    assert _state(db_file, "acme.example") == "verified"
    assert "Traceback" not in served.log_text()
    assert any(q[1].rstrip(".") == record["record_name"] for q in dns_server.queries)
