"""Locale choice: an explicit ``?lang=`` (remembered in the ``ug_lang`` cookie), else
the remembered choice, else the browser's ``Accept-Language`` (RFC 9110 §12.5.4).

German and English are supported; every page links to itself in the other language
with :func:`lang_url`.

Dates and times go through one helper, :func:`format_when` (template filters
``when``, ``when_date`` and ``when_time``), on every page and in every mail: the
reader's language (24-hour clock in German), the reader's time zone (the ``ug_tz``
cookie that ``static/timezone.js`` sets from the browser, else the language's
default zone) and the zone always shown.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import flask_babel
from babel.dates import format_datetime as babel_format_datetime
from flask import Flask, Response, has_request_context, request
from markupsafe import Markup

SUPPORTED = ("en", "de")
COOKIE = "ug_lang"
COOKIE_MAX_AGE = 365 * 24 * 3600
LANGUAGE_NAMES = {"en": "English", "de": "Deutsch"}


def ui_language(tag: str | None, default: str = "en") -> str:
    """The supported UI language for a stored BCP 47 tag (an account's ``locale``,
    up to 35 characters, such as ``de-CH`` or ``sr-Latn-RS``): its primary language
    subtag when that is supported, else ``default``. Only this prefix ever picks a
    catalogue; the full tag is kept as data."""
    if not tag:
        return default
    primary = tag.replace("_", "-").split("-", 1)[0].strip().lower()
    return primary if primary in SUPPORTED else default


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


TZ_COOKIE = "ug_tz"
MAX_ZONE_NAME = 64
# The zone a reader of each language is assumed to be in until the browser tells.
DEFAULT_ZONES = {"en": "UTC", "de": "Europe/Berlin"}
# CLDR patterns per language: German with the 24-hour clock, every time with its zone.
WHEN_PATTERNS = {
    "en": {"datetime": "MMM d, y, h:mm a z", "date": "MMM d, y", "time": "h:mm a z"},
    "de": {"datetime": "d. MMM y, HH:mm z", "date": "d. MMM y", "time": "HH:mm z"},
}


def _zone(name: str | None) -> tzinfo | None:
    """The IANA zone ``name`` (None for anything else, never an error)."""
    if not name or len(name) > MAX_ZONE_NAME or ".." in name or name.startswith("/"):
        return None
    if not all(c.isalnum() or c in "/_+-" for c in name):
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def reader_zone(lang: str | None = None) -> tzinfo:
    """The reader's time zone: the browser's (``ug_tz`` cookie) when known and valid,
    else the default of the language ``lang`` (the current one when None)."""
    if has_request_context():
        found = _zone(request.cookies.get(TZ_COOKIE))
        if found is not None:
            return found
    lang = lang or current_language()
    return _zone(DEFAULT_ZONES.get(lang, "UTC")) or UTC


def format_when(
    value: datetime | float | int, kind: str = "datetime", lang: str | None = None,
    zone: tzinfo | None = None,
) -> str:
    """``value`` (an aware or naive-UTC datetime, or a Unix time) for the reader:
    ``kind`` ``datetime``, ``date`` or ``time``, in language ``lang`` (the current one
    when None) and zone ``zone`` (:func:`reader_zone` when None)."""
    if isinstance(value, (int, float)):
        moment = datetime.fromtimestamp(value, UTC)
    else:
        moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    lang = lang if lang in WHEN_PATTERNS else current_language()
    lang = lang if lang in WHEN_PATTERNS else "en"
    zone = zone or reader_zone(lang)
    return babel_format_datetime(
        moment, WHEN_PATTERNS[lang][kind], tzinfo=zone, locale=lang
    )


def address(value: str | None) -> Markup:
    """An e-mail address for a page: in a ``ug-address`` span, which keeps it on one
    line (no break at its hyphens) unless it is wider than its box."""
    return Markup('<span class="ug-address">{}</span>').format(value or "")


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
    """Register the cookie hook, the templates' translation callables, the filter
    ``address`` (:func:`address`), the date filters ``when``, ``when_date`` and
    ``when_time`` (:func:`format_when`), the template globals ``get_locale`` (the
    page's language code, for ``<html lang>``),
    ``lang_url``, ``supported_languages`` and ``language_names``. Call it after
    ``Babel(app)``."""
    app.after_request(remember_choice)
    _install_template_gettext(app)
    app.add_template_filter(address, "address")
    app.add_template_filter(format_when, "when")
    app.add_template_filter(lambda value: format_when(value, "date"), "when_date")
    app.add_template_filter(lambda value: format_when(value, "time"), "when_time")
    app.jinja_env.globals.update(
        get_locale=current_language,
        lang_url=lang_url,
        supported_languages=SUPPORTED,
        language_names=LANGUAGE_NAMES,
    )
