"""In-process profile of the complete email-code sign-in, driven by the bench's
scripted browser over the Flask test client against a fresh SQLite database set up
by ``idp init`` and ``idp demo`` (with ``--postgres``: a fresh database on the local
PostgreSQL and the local Redis as the ephemeral store): by default a new employee's first sign-in
(authorize, email page and POST, code page and POST, profile page and POST, consent
page and POST, token, plus whatever redirects the flow adds); with ``--returning`` a
returning employee's first sign-in at the demo merchant (accounts seeded in-process
by :mod:`bench.seed`, one per journey: no profile step, consent asked).

``python -m bench.journey_profile [journeys] [--returning] [--postgres] [--top N]
[--no-profile] [--sql] [--parts] [--dump FILE]`` prints the pages one journey went through, the main
thread's CPU per journey and per request (unprofiled), with ``--parts`` how much of
it went to the ORM, template rendering, the ephemeral store and JWT signing (timed
around those calls, no profiler), then the cProfile top by cumulative and by own
time. The mail goes through the real outbox to a local SMTP sink; the courier
thread's work is not in the figures (it is in the full bench's worker CPU)."""

from __future__ import annotations

import cProfile
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench import seed
from bench.browser import Browser, Client, StepTimes, check_pages
from bench.driver import PAGES
from bench.server import ROOT, Backend, free_port, postgres_backend
from bench.smtp_sink import SmtpSink

BASE = "http://localhost"


class _Response:
    """The part of ``requests.Response`` the scripted browser reads."""

    def __init__(self, url: str, resp: Any) -> None:
        self.url = url
        self.status_code = resp.status_code
        self.headers = resp.headers
        self.text = resp.get_data(as_text=True)
        self._resp = resp

    def json(self) -> Any:
        return self._resp.get_json()


PER_STEP: dict[str, list[float]] = {}  # "GET /interaction/*/code" -> [CPU seconds, count]


def _step(method: str, path: str) -> str:
    parts = path.split("?")[0].strip("/").split("/")
    if parts[0] in ("interaction", "authorize") and len(parts) > 1:
        parts = [parts[0], *("*" if len(p) > 20 else p for p in parts[1:])]
    return f"{method} /{'/'.join(parts)}"


class _TestHttp:
    """A ``requests.Session`` look-alike over a Flask test client (cookies kept); the
    main thread's CPU of each request goes to :data:`PER_STEP`."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def _timed(self, method: str, path: str, **kwargs: Any) -> Any:
        started = time.thread_time()
        resp = self.client.open(path, method=method, **kwargs)
        slot = PER_STEP.setdefault(_step(method, path), [0.0, 0])
        slot[0] += time.thread_time() - started
        slot[1] += 1
        return resp

    @staticmethod
    def _path(url: str) -> str:
        parts = urlsplit(url)
        return parts.path + (f"?{parts.query}" if parts.query else "")

    def get(self, url: str, allow_redirects: bool = False) -> _Response:
        return _Response(url, self._timed("GET", self._path(url)))

    def post(
        self,
        url: str,
        data: dict[str, str],
        allow_redirects: bool = False,
        auth: tuple[str, str] | None = None,
    ) -> _Response:
        headers = {}
        if auth:
            import base64

            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        return _Response(url, self._timed("POST", self._path(url), data=data, headers=headers))


def _setup(
    workdir: Path, smtp_port: int, backend: Backend | None = None
) -> tuple[dict[str, str], dict[str, str]]:
    """``idp init`` and ``idp demo`` on a fresh SQLite file, or on ``backend`` (a
    fresh PostgreSQL database and Redis prefix); the environment and demo output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    env.update(
        IDP_ISSUER=BASE,
        IDP_DATABASE_URL=backend.database_url if backend else f"sqlite:///{workdir / 'profile.db'}",
        IDP_MASTER_KEY_FILE=str(workdir / "master.key"),
        IDP_SMTP_URL=f"smtp://127.0.0.1:{smtp_port}",
        IDP_SECURE_COOKIES="false",
        IDP_LOG_LEVEL="WARNING",
        IDP_OTP_SENDS_PER_IP="100000000",
    )
    if backend is not None and backend.redis_url:
        env.update(IDP_REDIS_URL=backend.redis_url, IDP_REDIS_PREFIX=backend.redis_prefix)
    for args in (("init", "--json"), ("demo", "--json")):
        out = subprocess.run(
            [sys.executable, "-m", "idp.cli", *args],
            env=env, cwd=ROOT, capture_output=True, text=True, check=True,
        ).stdout
    return env, json.loads(out)


def _print_parts(journey: Any, journeys: int) -> None:
    """Main-thread CPU per journey in a few areas, timed around their entry points
    (outermost call only; no profiler, so the shares are not distorted)."""
    import flask.templating
    from sqlalchemy.orm import Session

    from idp.crypto.keyring import KeyRing
    from idp.ephemeral.redis_store import RedisStore
    from idp.store.ephemeral_sql import SQLStore

    spent: dict[str, float] = {}
    busy = [False]

    def timed(area: str, fn: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if busy[0]:
                return fn(*args, **kwargs)
            busy[0] = True
            started = time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[area] = spent.get(area, 0.0) + time.thread_time() - started
                busy[0] = False
        return wrapper

    patches: list[tuple[Any, str, Any]] = [
        (flask.templating, "_render", "templates (Jinja, translations, CSRF token)"),
        (SQLStore, "_run", "ephemeral store (SQL)"),
        (RedisStore, "_call", "ephemeral store (Redis)"),
        (KeyRing, "sign_jwt", "JWT signing"),
        *((Session, m, "ORM (queries, flushes, commits)")
          for m in ("execute", "scalars", "scalar", "get", "commit", "flush")),
    ]
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in patches]
    for owner, name, area in patches:
        setattr(owner, name, timed(area, getattr(owner, name)))
    PER_STEP.clear()
    try:
        for _ in range(journeys):
            journey()
    finally:
        for owner, name, original in saved:
            setattr(owner, name, original)
    total = sum(v[0] for v in PER_STEP.values())
    print(f"where the app's {total / journeys * 1000:.2f} ms per journey go:")
    for area, seconds in sorted(spent.items(), key=lambda kv: -kv[1]):
        print(f"  {seconds / journeys * 1000:6.2f} ms  {area}")
    rest = total - sum(spent.values())
    print(f"  {rest / journeys * 1000:6.2f} ms  the rest (Flask, Werkzeug, authlib, "
          "Unitgate's own Python, the test client)")


def main() -> None:
    """Run the journey loop and print the figures."""
    journeys = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 100
    top = int(sys.argv[sys.argv.index("--top") + 1]) if "--top" in sys.argv else 40
    codes: dict[str, str] = {}
    backend = None
    if "--postgres" in sys.argv:
        backend = postgres_backend()
        if backend is None:
            sys.exit("journey_profile: --postgres needs the local PostgreSQL and Redis")
        print(f"backend: {backend.name}")
    sink = SmtpSink(codes, free_port())
    sink.start()
    try:
        _profile(codes, sink, backend, journeys, top)
    finally:
        sink.stop()
        if backend is not None:
            backend.drop()


def _profile(
    codes: dict[str, str], sink: SmtpSink, backend: Backend | None, journeys: int, top: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        env, demo = _setup(Path(tmp), sink.port, backend)
        os.environ.update(env)
        from idp.app import create_app

        app = create_app()
        client = Client(BASE, demo["client_id"], demo["client_secret"], demo["redirect_uri"])
        domain = demo.get("domain") or "acme-demo.example"
        counter = iter(range(10**9))
        returning = "--returning" in sys.argv
        if returning:  # one account per journey: warm-up, --sql, 5 batches, profile
            with app.app_context():
                seeding = time.perf_counter()
                n = seed.seed(10 + 1 + 6 * journeys, domain=domain)
            print(f"seeded {n} returning employees in {time.perf_counter() - seeding:.1f} s")
        pages = PAGES["returning" if returning else "signin"]

        def journey() -> StepTimes:
            times = StepTimes()
            browser = Browser(codes, _TestHttp(app.test_client()))  # type: ignore[arg-type]
            k = next(counter)
            email = seed.email(k, domain) if returning else f"p{k}@{domain}"
            code = browser.authorize(client, email, times)
            check_pages(times, *pages)
            browser.exchange(client, code, times)
            return times

        for _ in range(10):  # warm caches
            warm = journey()
        print(f"journey ({'returning' if returning else 'new'} employee):"
              f" {' > '.join(warm.pages)}, {warm.requests} requests")
        if "--sql" in sys.argv:  # list the statements of one journey
            from sqlalchemy import event

            from idp.store.db import db

            seen: list[str] = []
            with app.app_context():
                engine = db.engine

            def _record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
                seen.append(" ".join(statement.split())[:150])

            def _mark(sender: Any, **extra: Any) -> None:
                from flask import request

                seen.append(f"--- {request.method} {request.path}")

            from flask import request_started

            request_started.connect(_mark, app)
            event.listen(engine, "before_cursor_execute", _record)
            journey()
            event.remove(engine, "before_cursor_execute", _record)
            request_started.disconnect(_mark, app)
            print(f"{sum(not x.startswith('---') for x in seen)} statements in one journey:")
            print("\n".join(seen))
        PER_STEP.clear()
        batches = []  # the least disturbed of 5 batches (the machine is shared)
        n_req = 0
        for _ in range(5):
            started = time.thread_time()
            for _ in range(journeys):
                n_req += journey().requests
            batches.append((time.thread_time() - started) / journeys * 1000)
        cpu, per = min(batches), n_req / journeys / 5
        print(f"5 x {journeys} journeys, {per:.1f} requests each: "
              f"{cpu:.2f} ms main-thread CPU per journey (best batch; median "
              f"{sorted(batches)[2]:.2f}), {cpu / per:.2f} ms/request")
        server = sum(v[0] for v in PER_STEP.values()) / journeys / 5 * 1000
        print(f"of which in the app (test client call, median-ish over all batches): "
              f"{server:.2f} ms per journey")
        for name, (spent, count) in PER_STEP.items():
            print(f"  {spent / count * 1000:6.2f} ms  {name}")
        if "--parts" in sys.argv:
            _print_parts(journey, journeys)
        if "--no-profile" in sys.argv:
            return
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(journeys):
            journey()
        profiler.disable()
        stats = pstats.Stats(profiler)
        if "--dump" in sys.argv:
            stats.dump_stats(sys.argv[sys.argv.index("--dump") + 1])
        stats.sort_stats("cumulative").print_stats(top)
        stats.sort_stats("tottime").print_stats(top)


if __name__ == "__main__":
    main()
