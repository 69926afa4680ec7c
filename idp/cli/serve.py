"""``idp serve``: the production WSGI server (gunicorn), not Flask's dev server.

The master process never builds the app (no database connections survive a fork);
each worker calls :func:`idp.app.create_app` itself and then starts the mail outbox
delivery thread, so a node is just ``idp serve`` and nodes share nothing but the
database and Redis.
"""

from __future__ import annotations

import atexit
import importlib
import logging
import os
import shutil
import tempfile
from typing import Any

import click
from flask import Flask
from gunicorn.app.base import BaseApplication
from werkzeug.middleware.proxy_fix import ProxyFix

from idp.crypto.primitives import MasterKeyError, load_master_key
from idp.settings import Settings

log = logging.getLogger("idp.serve")

OUTBOX_INTERVAL_SECONDS = 2.0


def start_outbox(app: Any, interval: float = OUTBOX_INTERVAL_SECONDS) -> bool:
    """Start the outbox delivery thread of ``app`` when the mail package provides one;
    True when started."""
    try:
        outbox = importlib.import_module("idp.mail.outbox")
    except ModuleNotFoundError:
        return False
    start = getattr(outbox, "start_delivery_thread", None)
    if start is None:
        return False
    start(app, interval)
    return True


def _post_worker_init(worker: Any) -> None:
    """gunicorn hook, run in each worker after it loaded the app."""
    started = start_outbox(worker.wsgi)
    from idp.ldap.scheduler import start_ldap_scheduler

    start_ldap_scheduler(worker.wsgi)  # periodic LDAP syncs; one node per directory runs
    from idp.domains.scheduler import start_domain_scheduler

    start_domain_scheduler(worker.wsgi)  # domain re-checks; one process at a time checks
    from idp.webhooks.delivery import start_delivery_thread as start_webhooks

    start_webhooks(worker.wsgi)  # webhook deliveries, leased like the outbox
    from idp.interaction.rp_logout import start_delivery_thread as start_logouts

    start_logouts(worker.wsgi)  # OIDC back-channel logouts, leased like the outbox
    from idp.interaction.rp_logout import start_sweeper_thread

    start_sweeper_thread(worker.wsgi)  # sessions that ended unseen; one node at a time
    from idp.accounts.import_jobs import start_thread as start_imports

    start_imports(worker.wsgi)  # the console's CSV imports, leased like the outbox
    worker.log.info(
        "worker %s ready%s", worker.pid, " (outbox delivery running)" if started else ""
    )


def _child_exit(server: Any, worker: Any) -> None:
    """gunicorn hook: a dead worker's live gauges leave the metrics."""
    from idp.observability import metrics

    metrics.worker_exited(worker.pid)


def prepare_metrics_dir() -> str:
    """Multiprocess metrics for the workers about to fork: ``$PROMETHEUS_MULTIPROC_DIR``
    emptied of an earlier run's files, or a private temporary folder removed at exit
    (either must be writable: an ``emptyDir`` under a read-only root file system)."""
    from idp.observability import metrics

    given = os.environ.get(metrics.MULTIPROC_ENV)
    if given:
        return metrics.enable_multiprocess(given)
    path = tempfile.mkdtemp(prefix="unitgate-metrics-")
    master = os.getpid()

    def remove() -> None:  # forked workers inherit this hook: only the master removes
        if os.getpid() == master:
            shutil.rmtree(path, ignore_errors=True)

    atexit.register(remove)
    return metrics.enable_multiprocess(path)


def _when_ready(server: Any) -> None:
    server.log.info("Unitgate listening on %s", ", ".join(str(a) for a in server.LISTENERS))


def trust_proxies(app: Flask, hops: int) -> Flask:
    """Take the client address and scheme from the last ``hops`` entries of
    ``X-Forwarded-For``/``X-Forwarded-Proto`` (werkzeug's ProxyFix). With ``hops=0``
    the headers are ignored: anyone can send them, and the per-IP rate limits must see
    the real peer."""
    if hops > 0:
        # Flask's documented way to wrap the WSGI app; mypy sees a method replaced
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]
    return app


class UnitgateServer(BaseApplication):
    """A gunicorn application whose workers each build their own Unitgate app."""

    def __init__(self, options: dict[str, Any], proxy_hops: int = 0) -> None:
        self.options = options
        self.proxy_hops = proxy_hops
        super().__init__()

    def load_config(self) -> None:
        # Settings unknown to an older gunicorn (e.g. the control socket) are skipped.
        for key, value in self.options.items():
            if key in self.cfg.settings:
                self.cfg.set(key, value)

    def load(self) -> Any:
        from idp.app import create_app

        return trust_proxies(create_app(), self.proxy_hops)


def gunicorn_options(
    host: str, port: int, workers: int, threads: int, timeout: int, access_log: bool
) -> dict[str, Any]:
    """The gunicorn settings ``idp serve`` uses (documented in docs/operations.md)."""
    return {
        "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread" if threads > 1 else "sync",
        "preload_app": False,
        "timeout": timeout,
        "graceful_timeout": 30,
        "keepalive": 5,
        "accesslog": "-" if access_log else None,
        "access_log_format": '%(h)s "%(r)s" %(s)s %(b)s %(M)sms rid=%({x-request-id}o)s',
        "errorlog": "-",
        # Forwarded headers are handled by trust_proxies (--proxy-hops), not gunicorn.
        "forwarded_allow_ips": "",
        "proc_name": "unitgate",
        # gunicorn >= 24 opens a control socket at one fixed path per user; several
        # nodes or test servers on one machine would fight over it.
        "control_socket_disable": True,
        "post_worker_init": _post_worker_init,
        "child_exit": _child_exit,
        "when_ready": _when_ready,
    }


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--workers",
    default=2,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Worker processes (each builds its own app).",
)
@click.option(
    "--threads",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Threads per worker (more than 1 uses gunicorn's gthread worker).",
)
@click.option(
    "--timeout",
    default=30,
    show_default=True,
    type=click.IntRange(5, 600),
    help="Seconds before a silent worker is restarted.",
)
@click.option(
    "--proxy-hops",
    default=0,
    show_default=True,
    type=click.IntRange(0, 5),
    help="Reverse proxies in front whose X-Forwarded-For/-Proto are trusted.",
)
@click.option("--access-log/--no-access-log", default=True, show_default=True)
def serve_command(
    host: str,
    port: int,
    workers: int,
    threads: int,
    timeout: int,
    proxy_hops: int,
    access_log: bool,
) -> None:
    """Serve Unitgate with gunicorn. Fails at once, before forking, when the master
    key is missing; SIGTERM stops it gracefully (requests in flight finish)."""
    settings = Settings()
    try:
        load_master_key(settings.master_key, settings.master_key_file)
    except MasterKeyError as exc:
        raise click.ClickException(str(exc)) from exc
    options = gunicorn_options(host, port, workers, threads, timeout, access_log)
    prepare_metrics_dir()
    UnitgateServer(options, proxy_hops).run()
