"""The application factory: a short list of ``setup_*`` calls."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Flask, Response
from flask.sessions import SecureCookieSessionInterface
from flask_babel import Babel
from flask_wtf.csrf import CSRFProtect
from itsdangerous import URLSafeTimedSerializer

from idp.crypto import master_key
from idp.crypto.keyring import KeyRing
from idp.crypto.primitives import (
    Hasher,
    Sealer,
    derive_key,
    load_master_key,
    parse_previous_keys,
)
from idp.ephemeral import RedisOptions, create_store
from idp.errors import setup_errors
from idp.factors import known_devices
from idp.i18n import init_app as init_i18n
from idp.i18n import select_locale
from idp.interaction import pending as interaction
from idp.interaction import sessions
from idp.observability.logs import configure_logging
from idp.observability.metrics import setup_metrics, setup_probes
from idp.services import Services, attach
from idp.settings import Settings
from idp.store import health
from idp.store.db import db, init_db
from idp.web import form_limits
from idp.web.json_limits import LimitedJSONProvider

csrf = CSRFProtect()


def template_folder() -> str:
    """Installed wheels carry templates inside the package; a checkout has them at the top."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "templates", here.parent / "templates"):
        if candidate.is_dir():
            return str(candidate)
    raise RuntimeError("templates folder not found")


MAX_SYNC_ANSWERS = 1024  # a bound, should callables ever be made per request


class UnitgateFlask(Flask):
    """Flask without two costs every request paid: the coroutine check of each view
    and hook (``ensure_sync``; Unitgate has no async views, and the answer per
    function is remembered, so an async one would still be wrapped) and the signing
    serializer of the session cookie built anew (:class:`CsrfCookieSession`).
    ``request.get_json`` parses with the nesting limit of :mod:`idp.web.json_limits`."""

    json_provider_class = LimitedJSONProvider

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sync: dict[Callable[..., Any], Callable[..., Any]] = {}
        self.session_interface = CsrfCookieSession()

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        try:
            return self._sync[func]
        except KeyError:
            wrapped = super().ensure_sync(func)
            if len(self._sync) < MAX_SYNC_ANSWERS:  # views, hooks, handlers: a few dozen
                self._sync[func] = wrapped
            return wrapped
        except TypeError:  # unhashable callable
            return super().ensure_sync(func)


class CsrfCookieSession(SecureCookieSessionInterface):
    """Flask's signed session cookie (``ug_csrf``; it holds only the CSRF secret) with
    its serializer built once per secret key instead of once per request."""

    _cached: tuple[bytes | str, URLSafeTimedSerializer] | None = None

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        key = app.secret_key
        if not key:
            return None
        cached = self._cached
        if cached is None or cached[0] != key:
            serializer = super().get_signing_serializer(app)
            if serializer is None:
                return None
            cached = self._cached = (key, serializer)
        return cached[1]


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings()
    app = UnitgateFlask(
        "idp",
        template_folder=template_folder(),
        static_folder=str(Path(__file__).resolve().parent / "static"),
        static_url_path="/static",
    )

    setup_logging(settings)
    setup_metrics(app, settings.metrics_token)  # first: its hook then sees the final status
    setup_database(app, settings)
    setup_services(app, settings)
    setup_security(app, settings)
    setup_i18n(app)
    setup_errors(app)
    setup_blueprints(app, settings)
    return app


def setup_logging(settings: Settings) -> None:
    configure_logging(settings.log_level, settings.log_format)


def setup_database(app: Flask, settings: Settings) -> None:
    init_db(app, settings.database_url)

    @app.teardown_appcontext
    def _rollback_unfinished(exc: BaseException | None) -> None:
        if exc is not None:
            health.rollback()


def setup_services(app: Flask, settings: Settings) -> None:
    master = load_master_key(settings.master_key, settings.master_key_file)
    previous = parse_previous_keys(settings.master_key_previous)
    secret = settings.secret_key.encode() if settings.secret_key else derive_key(master, "secret")
    app.config["SECRET_KEY"] = secret
    if not settings.secret_key:  # sessions signed before a master-key switch stay valid
        app.config["SECRET_KEY_FALLBACKS"] = [derive_key(k, "secret") for k in previous]
    sealer = Sealer(master, previous)
    attach(
        app,
        Services(
            settings=settings,
            ephemeral=create_store(
                settings.redis_url, lambda: db.engine, settings.redis_prefix,
                RedisOptions.from_settings(settings),
            ),
            keyring=KeyRing(sealer),
            hasher=Hasher(lambda: master_key.keyed_hash_key(sealer, master)),
            sealer=sealer,
        ),
    )


def setup_security(app: Flask, settings: Settings) -> None:
    app.config.update(
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_NAME="ug_csrf",
        WTF_CSRF_TIME_LIMIT=None,
        WTF_CSRF_SSL_STRICT=False,
        MAX_CONTENT_LENGTH=1024 * 1024,
    )
    form_limits.init_app(app)  # before CSRF, which parses forms
    csrf.init_app(app)
    app.after_request(interaction.set_binding_cookie)
    app.after_request(sessions.set_cookie)
    app.after_request(known_devices.set_cookie)

    @app.after_request
    def _headers(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        if response.mimetype == "text/html":
            response.headers.setdefault(
                "Content-Security-Policy",
                "default-src 'self'; frame-ancestors 'none'; form-action 'self' *; "
                "base-uri 'none'; object-src 'none'",
            )
            response.headers.setdefault("X-Frame-Options", "DENY")
            response.headers.setdefault("Cache-Control", "no-store")
        return response


def setup_i18n(app: Flask) -> None:
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(Path(__file__).parent / "translations")
    Babel(app, locale_selector=select_locale)
    init_i18n(app)
    from idp.purchases import money

    money.init_app(app)  # the ``money`` filter: amounts on pages and in e-mails


def setup_blueprints(app: Flask, settings: Settings) -> None:
    from idp.login import setup_login
    from idp.oidc import setup_oidc

    setup_oidc(app, csrf)
    setup_login(app)
    from idp.login.views_ldap import setup_ldap_login

    setup_ldap_login(app)
    from idp.saml import setup_saml

    setup_saml(app, csrf)
    from idp.federation import setup_federation

    setup_federation(app, csrf, settings.federation_allow_private)
    from idp.dashboard import setup_dashboard

    setup_dashboard(app)
    from idp.console import setup_console

    setup_console(app)
    from idp.api import setup_api

    setup_api(app, csrf)
    if settings.dev_mode:
        from idp.mail.dev_outbox import bp as dev_outbox

        app.register_blueprint(dev_outbox)

    setup_probes(app)
    from idp.branding.routes import setup_branding

    setup_branding(app, settings.default_logo)

    from scim.app import setup_scim

    setup_scim(app, csrf)
