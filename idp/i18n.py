"""Locale choice: an explicit ``?lang=`` (remembered in a cookie), else the browser's."""

from __future__ import annotations

from flask import g, request

SUPPORTED = ("en", "de")
COOKIE = "ug_lang"


def select_locale() -> str:
    chosen = request.args.get("lang")
    if chosen in SUPPORTED:
        g.lang_cookie = chosen
        return chosen
    remembered = request.cookies.get(COOKIE)
    if remembered in SUPPORTED:
        return remembered
    return request.accept_languages.best_match(SUPPORTED) or "en"
