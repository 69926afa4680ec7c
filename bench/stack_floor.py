"""``python -m bench.stack_floor``: what the returning employee's sign-in would cost
on one core if Unitgate's own code cost nothing, only the parts the design card fixes
(Flask, Jinja with Flask-Babel and Flask-WTF, Flask-SQLAlchemy on SQLite, the
``cryptography`` signer) doing the work that journey does.

Two halves, both in-process on SQLite, main-thread CPU (``time.thread_time``):

1. **What one journey does**, counted on a live journey (the bench's scripted browser
   over the Flask test client against a database set up by ``idp init``, ``idp demo``
   and :mod:`bench.seed`): HTTP requests, rendered pages and mail templates, SQL
   statements (reads and writes) and transactions, ephemeral-store operations,
   signed JWTs.
2. **What each of those costs at the least**, measured on bare parts with no
   Unitgate code: a Flask request called as WSGI (no test client, no server), a page
   of the login pages' shape (a base template, a form with a CSRF token, ten
   strings translated from one German catalogue fetched once), a mail template (five
   translated strings, no form), an ORM read by primary key and an ORM insert
   inside a transaction and what a commit adds, on the engine options Unitgate uses
   (raw DB-API figures beside them), one ephemeral-store statement on a raw
   connection, one ES256 signature.

The floor is the sum of count x cost. It leaves out on purpose: the HTTP server's
parsing (``bench/floor.py`` measures gunicorn with a bare app), the outbox mail
(``python -m bench.mail_cost``), and all OIDC, login and policy logic. So the real
journey can never be cheaper than the floor; the ceiling it gives is an upper bound
on sign-ins per second per core with this stack."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

TARGET_PER_SECOND = 150
TRANSLATIONS = Path(__file__).resolve().parent.parent / "idp" / "translations"


class _Base(DeclarativeBase):
    pass


class _Row(_Base):
    """A small table for the ORM figures (one string key, one string column)."""

    __tablename__ = "rows"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))


def _best(fn: Callable[[], Any], n: int) -> float:
    """Microseconds of main-thread CPU per call: best of three batches of ``n``."""
    for _ in range(min(n, 200)):
        fn()
    best = float("inf")
    for _ in range(3):
        started = time.thread_time()
        for _ in range(n):
            fn()
        best = min(best, (time.thread_time() - started) / n)
    return best * 1e6


def _environ(path: str) -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": "", "SERVER_NAME": "x",
        "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(), "wsgi.errors": sys.stderr, "wsgi.multithread": True,
        "wsgi.multiprocess": False, "wsgi.run_once": False, "HTTP_HOST": "x",
        "HTTP_ACCEPT_LANGUAGE": "de,en;q=0.8",
    }


def _call(app: Any, path: str) -> Callable[[], None]:
    def request() -> None:
        body = app(_environ(path), lambda status, headers, exc_info=None: None)
        b"".join(body)
        if hasattr(body, "close"):
            body.close()
    return request


BASE = """<!doctype html><html lang="en"><head><title>{% block title %}{% endblock %}</title>
</head><body><header>{{ _("Language") }}</header><main>{% block content %}{% endblock %}</main>
</body></html>"""
PAGE = """{% extends "base.html" %}{% block title %}{{ _("Sign in") }}{% endblock %}
{% block content %}<h1>{{ _("Sign in") }}</h1><p>{{ _("%(m)s asks you to sign in.", m=who) }}</p>
<form method="post" action="/x"><input type="hidden" name="csrf_token" value="{{ csrf_token() }}">
<label for="e">{{ _("Work e-mail address") }}</label><input id="e" name="email" type="email">
<p>{{ _("We will e-mail you a 6-digit code.") }}</p><p>{{ _("optional") }}</p>
<p>{{ _("Allow") }}</p><p>{{ _("Deny") }}</p><p>{{ _("Share your details") }}</p>
<button type="submit">{{ _("Send code") }}</button></form>{% endblock %}"""
MAIL = """{{ _("Your sign-in code") }}: {{ code }}
{{ _("Enter it on the sign-in page.") }} {{ _("It is valid for 10 minutes.") }}
{{ _("If you did not ask for it, ignore this e-mail.") }} {{ _("Unitgate") }}"""


def _bare_parts() -> dict[str, float]:
    """Microseconds per operation of the bare parts (no Unitgate code)."""
    from babel.support import Translations
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from flask import Flask, render_template
    from flask_babel import Babel
    from flask_sqlalchemy import SQLAlchemy
    from flask_wtf import CSRFProtect
    from jinja2 import DictLoader
    from sqlalchemy import event

    out: dict[str, float] = {}
    app = Flask("floor")
    app.config.update(SECRET_KEY="x" * 32, WTF_CSRF_TIME_LIMIT=None)
    app.jinja_loader = DictLoader({"base.html": BASE, "page.html": PAGE, "mail.txt": MAIL})
    Babel(app, locale_selector=lambda: "de")
    CSRFProtect(app)
    # The cheapest translated template: one catalogue, no per-string locale lookup.
    catalogue = Translations.load(str(TRANSLATIONS), ["de"])
    app.jinja_env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=catalogue.ugettext,
        ngettext=catalogue.ungettext,
        newstyle=True,
    )

    @app.get("/hello")
    def hello() -> str:
        return "hello"

    @app.get("/page")
    def page() -> str:
        return render_template("page.html", who="Shop")

    @app.get("/mail")
    def mail() -> str:
        return render_template("mail.txt", code="123456")

    out["flask_request"] = _best(_call(app, "/hello"), 3000)
    out["page"] = _best(_call(app, "/page"), 2000) - out["flask_request"]
    out["mail_template"] = _best(_call(app, "/mail"), 2000) - out["flask_request"]

    tmp = tempfile.mkdtemp()
    path = os.path.join(tmp, "floor.db")
    db = SQLAlchemy(model_class=_Base, session_options={"expire_on_commit": False})
    sql_app = Flask("floor_sql")
    sql_app.config.update(
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{path}",
        SQLALCHEMY_ENGINE_OPTIONS={"connect_args": {"timeout": 30, "check_same_thread": False}},
    )
    db.init_app(sql_app)
    counter = iter(range(10**9))
    with sql_app.app_context():
        def pragmas(conn: Any, _record: Any) -> None:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
        event.listen(db.engine, "connect", pragmas)
        db.create_all()
        db.session.add(_Row(id="known", name="n"))
        db.session.commit()

        def orm_read() -> None:  # inside an open transaction: no commit
            db.session.expunge_all()  # a fresh identity map: the get queries
            db.session.get(_Row, "known")

        def orm_insert() -> None:  # flushed inside an open transaction
            db.session.add(_Row(id=f"r{next(counter)}", name="n"))
            db.session.flush()

        def orm_write() -> None:  # its own transaction
            db.session.add(_Row(id=f"r{next(counter)}", name="n"))
            db.session.commit()

        out["orm_read"] = _best(orm_read, 2000)
        out["orm_insert"] = _best(orm_insert, 2000)
        db.session.commit()
        out["orm_write"] = _best(orm_write, 2000)
        # What ending a transaction adds to its last statement (pool check-in, COMMIT).
        out["orm_commit"] = max(0.0, out["orm_write"] - out["orm_insert"])
    raw = sqlite3.connect(path, check_same_thread=False)
    raw.execute("PRAGMA synchronous=NORMAL")
    raw.execute("CREATE TABLE ephemeral (key TEXT PRIMARY KEY, value TEXT, expires_at REAL)")

    def raw_read() -> None:
        raw.execute("SELECT id, name FROM rows WHERE id = ?", ("known",)).fetchone()

    def raw_write() -> None:
        raw.execute("INSERT INTO rows (id, name) VALUES (?, ?)", (f"w{next(counter)}", "n"))
        raw.commit()

    def ephemeral_op() -> None:
        raw.execute(
            "INSERT INTO ephemeral (key, value, expires_at) VALUES (?, ?, ?) ON CONFLICT (key) "
            "DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
            ("k", '{"a": 1}', time.time() + 60),
        )
        raw.commit()

    out["raw_read"] = _best(raw_read, 5000)
    out["raw_write"] = _best(raw_write, 3000)
    out["ephemeral_op"] = _best(ephemeral_op, 3000)
    key = ec.generate_private_key(ec.SECP256R1())
    out["es256_sign"] = _best(lambda: key.sign(b"x" * 400, ec.ECDSA(hashes.SHA256())), 2000)
    return out


def _count_journey() -> dict[str, int]:
    """Run returning employees' sign-ins in-process and count what one does."""
    from bench import journey_profile as jp
    from bench import seed
    from bench.browser import Browser, Client, StepTimes, check_pages
    from bench.driver import PAGES
    from bench.server import free_port
    from bench.smtp_sink import SmtpSink

    codes: dict[str, str] = {}
    sink = SmtpSink(codes, free_port())
    sink.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            env, demo = jp._setup(Path(tmp), sink.port)
            os.environ.update(env)
            import flask.templating
            from sqlalchemy import event

            from idp.app import create_app
            from idp.crypto.keyring import KeyRing
            from idp.store.db import db
            from idp.store.ephemeral_sql import SQLStore

            app = create_app()
            client = Client(jp.BASE, demo["client_id"], demo["client_secret"],
                            demo["redirect_uri"])
            domain = demo.get("domain") or "acme-demo.example"
            with app.app_context():
                seed.seed(4, domain=domain)
                engine = db.engine
            counts = dict.fromkeys(
                ("requests", "pages", "mail_templates", "sql_reads", "sql_writes", "commits",
                 "ephemeral", "jwts"), 0)

            def journey(k: int) -> StepTimes:
                times = StepTimes()
                browser = Browser(codes, jp._TestHttp(app.test_client()))  # type: ignore[arg-type]
                code = browser.authorize(client, seed.email(k, domain), times)
                check_pages(times, *PAGES["returning"])
                browser.exchange(client, code, times)
                return times

            journey(0)  # warm: first-use work (key import, caches) is not per journey

            def counted(name: str, fn: Any) -> Any:
                def wrapper(*args: Any, **kwargs: Any) -> Any:
                    counts[name] += 1
                    return fn(*args, **kwargs)
                return wrapper

            def statement(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
                verb = sql.lstrip().split(None, 1)[0].upper()
                counts["sql_reads" if verb == "SELECT" else "sql_writes"] += 1

            def commit(_conn: Any) -> None:
                counts["commits"] += 1

            render = flask.templating._render

            def counted_render(app: Any, template: Any, context: Any) -> str:
                mail = (template.name or "").startswith("mail/")
                counts["mail_templates" if mail else "pages"] += 1
                return render(app, template, context)

            flask.templating._render = counted_render  # type: ignore[assignment]
            patches = [(SQLStore, "_run", "ephemeral"), (KeyRing, "sign_jwt", "jwts")]
            saved = [(owner, attr, getattr(owner, attr)) for owner, attr, _ in patches]
            for owner, attr, name in patches:
                setattr(owner, attr, counted(name, getattr(owner, attr)))
            event.listen(engine, "before_cursor_execute", statement)
            event.listen(engine, "commit", commit)
            runs = 3
            try:
                for k in range(1, runs + 1):
                    counts["requests"] += journey(k).requests
            finally:
                flask.templating._render = render  # type: ignore[assignment]
                for owner, attr, original in saved:
                    setattr(owner, attr, original)
                event.remove(engine, "before_cursor_execute", statement)
                event.remove(engine, "commit", commit)
            return {name: round(value / runs) for name, value in counts.items()}
    finally:
        sink.stop()


def main() -> None:
    """Count, measure and print the floor as JSON."""
    counts = _count_journey()
    parts = _bare_parts()
    terms = {
        "requests x bare Flask request": counts["requests"] * parts["flask_request"],
        "pages x bare page (CSRF token, translations)": counts["pages"] * parts["page"],
        "mail templates x bare mail template": counts["mail_templates"] * parts["mail_template"],
        "SQL reads x ORM read": counts["sql_reads"] * parts["orm_read"],
        "SQL writes x ORM insert": counts["sql_writes"] * parts["orm_insert"],
        "commits x ORM commit": counts["commits"] * parts["orm_commit"],
        "ephemeral operations x raw statement and commit":
            counts["ephemeral"] * parts["ephemeral_op"],
        "JWTs x ES256 signature": counts["jwts"] * parts["es256_sign"],
    }
    floor_ms = sum(terms.values()) / 1000
    budget_ms = 1000 / TARGET_PER_SECOND
    print(json.dumps({
        "name": "stack_floor",
        "journey": "returning employee, new merchant (bench scenario 'returning')",
        "per_journey": counts,
        "microseconds_per_operation": {k: round(v, 1) for k, v in parts.items()},
        "floor_terms_ms": {k: round(v / 1000, 2) for k, v in terms.items()},
        "floor_ms_per_journey": round(floor_ms, 2),
        "ceiling_per_core_per_second": round(1000 / floor_ms),
        "target_budget_ms_per_journey": round(budget_ms, 2),
        "floor_share_of_target_budget": f"{100 * floor_ms / budget_ms:.0f} %",
    }, indent=2))


if __name__ == "__main__":
    main()
