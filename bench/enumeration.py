"""Does the e-mail step tell whether an address has an account? A measurement, not a
test (../shared/SECURITY.md: "same response, status and timing whether or not the
address is known"; timings never go into tests).

In-process on a fresh SQLite database (``idp init`` + ``idp demo``, mail through the
real outbox to a local SMTP sink), ``python -m bench.enumeration [N]`` seeds N
returning employees (:mod:`bench.seed`) and then, alternating, submits the e-mail
form of a fresh sign-in for a known address and for an unknown one of the same
domain, N times each. It prints the status and redirect target of both kinds (which
must be the same), the wall time of the POST (median, p90, p99), the difference of
the medians, and as the noise floor the difference of the medians of two random
halves of the unknown-address timings. ``make bench`` adds the output to
bench/RESULTS.md."""

from __future__ import annotations

import os
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from bench import seed
from bench.browser import pkce_pair
from bench.journey_profile import BASE, _setup
from bench.server import free_port
from bench.smtp_sink import SmtpSink

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _post_email(app: Any, demo: dict[str, str], address: str) -> tuple[float, int, str]:
    """Start a sign-in in a new browser, load the e-mail page, and time the POST of
    ``address``; (milliseconds, status, redirect path with the interaction id blanked)."""
    browser = app.test_client()
    _, challenge = pkce_pair()
    query = urlencode({
        "response_type": "code", "client_id": demo["client_id"],
        "redirect_uri": demo["redirect_uri"], "scope": "openid email profile",
        "state": "s", "nonce": "n", "code_challenge": challenge,
        "code_challenge_method": "S256",
    })  # fmt: skip
    page_url = browser.get(f"/authorize?{query}").headers["Location"]
    page = browser.get(page_url).get_data(as_text=True)
    found = CSRF.search(page)
    if found is None:
        raise RuntimeError("no e-mail form")
    started = time.perf_counter()
    resp = browser.post(page_url.removeprefix(BASE) + "/email",
                        data={"csrf_token": found.group(1), "email": address})  # fmt: skip
    elapsed = (time.perf_counter() - started) * 1000
    target = re.sub(r"/interaction/[^/]+", "/interaction/*", resp.headers.get("Location", ""))
    return elapsed, resp.status_code, target.removeprefix(BASE)


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 400
    codes: dict[str, str] = {}
    sink = SmtpSink(codes, free_port())
    sink.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            env, demo = _setup(Path(tmp), sink.port)
            os.environ.update(env)
            from idp.app import create_app

            app = create_app()
            with app.app_context():
                seed.seed(rounds + 20)
            known: list[float] = []
            unknown: list[float] = []
            answers: dict[str, set[tuple[int, str]]] = {"known": set(), "unknown": set()}
            for k in range(20):  # warm-up, both kinds
                _post_email(app, demo, seed.email(rounds + k))
                _post_email(app, demo, f"nobody-warm-{k}@{seed.DOMAIN}")
            for k in range(rounds):
                pair = [("known", seed.email(k)), ("unknown", f"nobody-{k}@{seed.DOMAIN}")]
                random.shuffle(pair)  # neither kind always goes first
                for kind, address in pair:
                    ms, status, target = _post_email(app, demo, address)
                    (known if kind == "known" else unknown).append(ms)
                    answers[kind].add((status, target))
    finally:
        sink.stop()
    halves = unknown[:]
    random.shuffle(halves)
    noise = statistics.median(halves[::2]) - statistics.median(halves[1::2])
    print(f"POST /interaction/<id>/email, {rounds} known and {rounds} unknown addresses "
          "(in-process, alternating, wall time of the POST):")
    for kind, values in (("known", known), ("unknown", unknown)):
        print(f"  {kind:8} answers {sorted(answers[kind])}  median "
              f"{statistics.median(values):.3f} ms  p90 {_percentile(values, 0.9):.3f} ms  "
              f"p99 {_percentile(values, 0.99):.3f} ms")
    same = answers["known"] == answers["unknown"]
    print(f"  same status and redirect for both: {'yes' if same else 'NO'}")
    print(f"  median known - unknown: {statistics.median(known) - statistics.median(unknown):+.3f}"
          f" ms (noise floor, two halves of the unknown timings: {noise:+.3f} ms)")


if __name__ == "__main__":
    main()
