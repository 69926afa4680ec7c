"""Locale choice: an explicit ``?lang=`` (remembered in the ``ug_lang`` cookie), else
the remembered choice, else the browser's ``Accept-Language`` (RFC 9110 §12.5.4).

German and English are supported; every page links to itself in the other language
with :func:`lang_url`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import flask_babel
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


_CATALOGUES: dict[tuple[str, str | None], Any] = {}


def _catalogue() -> Any:
    """The translations of the current locale (Flask-Babel's choice, so
    ``force_locale`` counts): Flask-Babel's own catalogue, looked up once per process
    and language instead of through its domain and context on every string. Every app
    reads the same directory (``idp/translations``)."""
    locale = flask_babel.get_locale()
    if locale is None:  # outside a request: Flask-Babel's untranslated catalogue
        return flask_babel.get_translations()
    key = (locale.language, locale.territory)
    found = _CATALOGUES.get(key)
    if found is None:
        found = _CATALOGUES.setdefault(key, flask_babel.get_translations())
    return found


def _install_template_gettext(app: Flask) -> None:
    """Templates' ``_``, ``gettext`` and friends through :func:`_catalogue` (a page
    asks for a dozen strings; Flask-Babel's own callables resolve the domain, the
    context and the locale's name for each)."""
    # added by Jinja's i18n extension at run time, unknown to Jinja's types
    app.jinja_env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=lambda s: _catalogue().ugettext(s),
        ngettext=lambda s, p, n: _catalogue().ungettext(s, p, n),
        pgettext=lambda c, s: _catalogue().upgettext(c, s),
        npgettext=lambda c, s, p, n: _catalogue().unpgettext(c, s, p, n),
        newstyle=True,
    )


def init_app(app: Flask) -> None:
    """Register the cookie hook, the templates' translation callables and the
    template globals ``get_locale`` (the page's language code, for ``<html lang>``),
    ``lang_url``, ``supported_languages`` and ``language_names``. Call it after
    ``Babel(app)``."""
    app.after_request(remember_choice)
    _install_template_gettext(app)
    app.jinja_env.globals.update(
        get_locale=current_language,
        lang_url=lang_url,
        supported_languages=SUPPORTED,
        language_names=LANGUAGE_NAMES,
    )
