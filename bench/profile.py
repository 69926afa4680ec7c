"""Where the time of the hot path goes: cProfile of the token and introspection
endpoints run in-process (Flask test client, no HTTP server), attributed to areas."""

from __future__ import annotations

import base64
import cProfile
import os
import pstats
import time
from dataclasses import dataclass

AREAS = (
    ("JOSE signing and verification", ("joserfc", "cryptography")),
    ("database (SQLAlchemy and driver)", ("sqlalchemy", "sqlite3", "psycopg", "flask_sqlalchemy")),
    ("Redis client", ("redis",)),
    ("authlib request handling", ("authlib",)),
    ("Flask and Werkzeug", ("flask", "werkzeug", "jinja2", "click", "flask_wtf", "flask_babel")),
    ("JSON", ("json",)),
    ("Unitgate code", ("/idp/",)),
)


@dataclass
class Profile:
    name: str
    requests: int
    ms_per_request: float
    areas: list[tuple[str, float]]  # (area, share of total time)
    top: list[tuple[str, float]]  # (function, ms per request, own time)


def _area(filename: str) -> str:
    for area, needles in AREAS:
        if any(f"/{n}/" in filename or f"/{n}." in filename or n in filename for n in needles):
            return area
    return "other (stdlib, logging, ...)"


def profile_endpoint(
    env: dict[str, str],
    name: str,
    path: str,
    body: dict[str, str],
    auth: tuple[str, str],
    requests: int = 1500,
) -> Profile:
    """Profile ``requests`` POSTs to ``path`` in a fresh app on the bench database."""
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        from idp.app import create_app

        app = create_app()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    client = app.test_client()
    token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    headers = {"Authorization": f"Basic {token}"}
    for _ in range(50):  # warm caches (key ring, client cache, pools)
        assert client.post(path, data=body, headers=headers).status_code == 200
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    for _ in range(requests):
        client.post(path, data=body, headers=headers)
    profiler.disable()
    elapsed = time.perf_counter() - started
    stats = pstats.Stats(profiler)
    by_area: dict[str, float] = {}
    own: list[tuple[str, float]] = []
    total = 0.0
    for (filename, line, func), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        by_area[_area(filename)] = by_area.get(_area(filename), 0.0) + tottime
        total += tottime
        short = filename.split("site-packages/")[-1].split("/work/main/")[-1]
        own.append((f"{short}:{line}({func})", tottime))
    own.sort(key=lambda x: -x[1])
    return Profile(
        name=name,
        requests=requests,
        ms_per_request=elapsed / requests * 1000,
        areas=sorted(((a, t / total) for a, t in by_area.items()), key=lambda x: -x[1]),
        top=[(f, t / requests * 1000) for f, t in own[:8]],
    )
