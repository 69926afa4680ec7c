"""``make screenshots``: PNGs of the main pages in ``docs/screenshots/``.

A real server (``idp serve``, development mode, its own SQLite file and master key in
a temporary folder) with the demo data of ``make run`` (``idp init``, ``idp demo``)
plus a main user of the demo company and an operator's staff member looking after
it. Headless Chromium (Debian's, through Playwright) signs in as the demo employee at
the demo shop through the real ``/authorize`` (the one-time code read from the
development outbox ``/dev/outbox``) and photographs the start page, the e-mail and
code pages, the consent page and the dashboard; then, as
the main user and as the staff member, every page of the administration console
under ``/admin/`` that a breadth-first crawl of its GET links finds (bounded), so
that console pages added later appear without a change here.

Every page in German and English, at 360 px (phone) and 1280 px (desktop), named
``<page>-<lang>-<width>.png``. Run ``python -m tests.support.screenshots --out DIR``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from tests.support.browser import CHROMIUM, CHROMIUM_ARGS
from tests.support.processes import free_port, idp_env, idp_serve, run_idp
from tests.support.sweep import Sweep, new_context, shape

MAIN_USER = "chef@acme-demo.example"
STAFF = "support@operator.example"
MAX_HEIGHT = 1400  # long pages are cut here: the top says what the page is
ADMIN_PAGES = {"main-user": 3, "staff": 2}  # the crawl's bound: keeps docs/ small
CODE_RE = re.compile(r"\b(\d{6})\b")
PROFILE = {"given_name": "Eva", "family_name": "Berger", "department": "Einkauf"}


def seed_people(env: dict[str, str]) -> None:
    """The demo company's main user and the operator's staff member assigned to it
    (through the services, in a child process with the server's settings)."""
    code = f"""
from idp.app import create_app
from idp.accounts import accesses
from idp.config import demo
from idp.rights import staff
from idp.store.db import db
from idp.store.models import Account
from idp.store.unit_of_work import atomic
from idp.units import registry as units

app = create_app()
with app.app_context():
    unit = units.get(demo.UNIT_SLUG)
    for email, given, family in (({MAIN_USER!r}, "Clara", "Chef"),
                                 ({STAFF!r}, "Sam", "Support")):
        db.session.add(Account(email=email, email_verified=True, given_name=given,
                               family_name=family))
    db.session.commit()
    chef = db.session.query(Account).filter_by(email={MAIN_USER!r}).one()
    with atomic():
        accesses.create(chef.id, unit.id, ["main_user", "employee"], "idp demo", event=None)
    staff.add({STAFF!r}, "idp demo")
    staff.assign({STAFF!r}, demo.UNIT_SLUG, "administrator", actor="idp demo")
"""
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"seeding the demo people failed:\n{done.stderr}")


def outbox_code(page: Any, base: str, email: str) -> str:
    """The newest one-time code e-mailed to ``email``, from the development outbox."""
    outbox = page.context.new_page()
    outbox.goto(base + "/dev/outbox")
    for article in outbox.locator("article.ug-mail").all():
        if email in article.inner_text():
            found = CODE_RE.search(article.locator("pre").inner_text())
            if found:
                outbox.close()
                return found.group(1)
    raise AssertionError(f"no code for {email} in the outbox")


def email_code(page: Any, base: str, email: str, shots: Sweep | None = None) -> None:
    """From the e-mail page on: the address, then the code from the outbox."""
    if shots is not None:
        shots.visit(page, "sign-in-email")
    page.locator("input[name=email]").fill(email)
    page.locator("form button[type=submit]").first.click()
    page.wait_for_url(re.compile(r"/code$"))
    if shots is not None:
        shots.visit(page, "sign-in-code")
    page.locator("input[name=code]").fill(outbox_code(page, base, email))
    page.locator("form button[type=submit]").first.click()
    page.wait_for_load_state()


def complete_profile(page: Any) -> None:
    """A first sign-in's profile page: the required fields filled, saved."""
    if not page.url.endswith("/profile"):
        return
    for field in page.locator("input[required]").all():
        if not field.input_value():
            field.fill(PROFILE.get(field.get_attribute("name") or "", "Einkauf"))
    page.locator("form button[type=submit]").first.click()
    page.wait_for_load_state()


def take(browser: Any, base: str, authorize_url: str, employee: str, out: Path) -> list[str]:
    def shoot(page: Any, name: str, lang: str, width: int) -> None:
        slug = re.sub(r"[0-9a-f]{32}", "item", name.lower())
        slug = re.sub(r"[^a-z0-9]+", "-", slug).strip("-")
        bottom = page.evaluate(
            "() => Math.ceil((document.querySelector('main') || document.body)"
            ".getBoundingClientRect().bottom + window.scrollY)"
        )
        height = min(bottom + 24, MAX_HEIGHT)  # the page down to its content
        page.screenshot(
            path=str(out / f"{slug}-{lang}-{width}.png"),
            clip={"x": 0, "y": 0, "width": width, "height": height},
            full_page=True,
        )

    shots = Sweep(checks=False, shoot=shoot)
    context = new_context(browser)
    page = context.new_page()
    shots.visit(page, "landing", base + "/")
    page.goto(authorize_url)
    email_code(page, base, employee, shots)
    complete_profile(page)
    page.wait_for_url(re.compile(r"/consent$"))
    shots.visit(page, "consent")
    context.close()

    context = new_context(browser)
    page = context.new_page()
    page.goto(base + "/account")
    email_code(page, base, employee)
    complete_profile(page)
    page.wait_for_url(re.compile(r"/account$"))
    shots.visit(page, "dashboard", base + "/account")
    context.close()

    swept: list[str] = []
    for who, email in (("main-user", MAIN_USER), ("staff", STAFF)):
        context = new_context(browser)
        page = context.new_page()
        page.goto(base + "/account")
        email_code(page, base, email)
        complete_profile(page)
        swept += shots.crawl(
            page,
            base,
            ["/admin/"],
            ("/admin",),
            who,
            limit=ADMIN_PAGES[who],
            skip={shape(p) for p in swept},  # staff: only what the main user does not see
        )
        context.close()
    return shots.visited


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    from idp.crypto.primitives import generate_master_key

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.png"):
        old.unlink()
    with tempfile.TemporaryDirectory(prefix="unitgate-shots-") as tmp:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = idp_env(
            dev_mode="true",
            secure_cookies="false",
            issuer=base,
            database_url=f"sqlite:///{tmp}/idp.db",
            master_key=generate_master_key(),
            platform_staff=STAFF,
        )
        for step in (["init"], ["demo", "--json"]):
            done = run_idp(step, env)
            if done.returncode != 0:
                sys.stderr.write(done.stdout + done.stderr)
                return 1
        demo = json.loads(done.stdout.strip().splitlines()[-1])
        seed_people(env)
        with (
            idp_serve(env, Path(tmp) / "serve.log", workers=1, port=port) as served,
            sync_playwright() as p,
        ):
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                visited = take(
                    browser, served.url, demo["authorize_url"], demo["employee_email"], out
                )
            finally:
                browser.close()
    files = sorted(out.glob("*.png"))
    size = sum(f.stat().st_size for f in files)
    print(f"{len(files)} screenshots of {len(visited) // 2} pages in {out} ({size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
