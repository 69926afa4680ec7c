"""Locale choice: an explicit ``?lang=`` (remembered in the ``ug_lang`` cookie), else
the remembered choice, else the browser's ``Accept-Language`` (RFC 9110 §12.5.4).

German and English are supported; every page links to itself in the other language
with :func:`lang_url`.
"""

from __future__ import annotations

from urllib.parse import urlencode

from flask import Flask, Response, request

SUPPORTED = ("en", "de")
COOKIE = "ug_lang"
COOKIE_MAX_AGE = 365 * 24 * 3600
LANGUAGE_NAMES = {"en": "English", "de": "Deutsch"}


def select_locale() -> str:
    """The language of this request (Flask-Babel's locale selector)."""
    chosen = request.args.get("lang")
    if chosen in SUPPORTED:
        return chosen
    remembered = request.cookies.get(COOKIE)
    if remembered in SUPPORTED:
        return remembered
    return request.accept_languages.best_match(SUPPORTED) or "en"


def remember_choice(response: Response) -> Response:
    """After-request hook: when ``?lang=`` chose a supported language, remember it in
    the ``ug_lang`` cookie (one year, ``SameSite=Lax``, not readable by scripts)."""
    chosen = request.args.get("lang")
    if chosen in SUPPORTED and request.cookies.get(COOKIE) != chosen:
        from idp.services import settings

        response.set_cookie(
            COOKIE,
            chosen,
            max_age=COOKIE_MAX_AGE,
            httponly=True,
            secure=settings().secure_cookies,
            samesite="Lax",
            path="/",
        )
    return response


def lang_url(lang: str) -> str:
    """This page's path and query with ``lang`` set to ``lang`` (a relative URL)."""
    args = request.args.to_dict(flat=False)
    args["lang"] = [lang]
    return f"{request.path}?{urlencode(args, doseq=True)}"


def current_language() -> str:
    """The language code of this request (``en`` or ``de``)."""
    from flask_babel import get_locale

    locale = get_locale()
    return locale.language if locale is not None else "en"


def init_app(app: Flask) -> None:
    """Register the cookie hook and the template globals ``get_locale`` (the page's
    language code, for ``<html lang>``), ``lang_url``, ``supported_languages`` and
    ``language_names``."""
    app.after_request(remember_choice)
    app.jinja_env.globals.update(
        get_locale=current_language,
        lang_url=lang_url,
        supported_languages=SUPPORTED,
        language_names=LANGUAGE_NAMES,
    )
