"""The ``browser`` fixture: Debian's headless Chromium driven by Playwright.

Playwright's own browser downloads are never used (no network here): the tests drive
``/usr/bin/chromium`` with the flags that keep it off the network. A missing Chromium
or Playwright skips the browser tests with the reason, or fails them under CI.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.backends import missing

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[2] / "test-results" / "browser"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        missing("/usr/bin/chromium is not installed")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("python playwright is not installed")
    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


def sign_in_by_code(page: Any, email: str, smtp_server: Any) -> None:
    """On the login page ``page`` shows: the e-mail address, then the code from the
    newest mail to it in ``smtp_server`` (a ``tests.support.smtp.SmtpSink``)."""
    import re

    from tests.support.smtp import code_in

    page.get_by_label("Work e-mail address").fill(email)
    page.get_by_role("button", name="Send code").click()
    page.wait_for_url(re.compile(r"/code$"))
    page.get_by_label("Code", exact=True).fill(code_in(smtp_server.last_to(email)))
    page.get_by_role("button", name="Continue").click()
