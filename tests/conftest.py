"""Shared fixtures: the app on every storage backend, a test client, a CLI runner.

The ``app`` fixture is parametrised over two backend pairs so the suite as a whole
runs on SQLite and PostgreSQL and on both ephemeral stores:

* ``sqlite-sql``: embedded SQLite database, SQL ephemeral store;
* ``postgres-redis``: PostgreSQL and Redis (the production shape).

``IDP_TEST_MATRIX=full`` adds ``sqlite-redis`` and ``postgres-sql``. A missing service
skips the tests that need it, with the reason, unless ``IDP_TEST_REQUIRE_SERVICES=1``
(set by ``.ci/run``): then it fails them.
"""

from __future__ import annotations

import os

import pytest

from tests.support.backends import BACKENDS, Backend, backend_or_skip

pytest_plugins = [
    "tests.support.apps",
    "tests.support.smtp",
    "tests.support.live",
    "tests.support.ldap_fixtures",
    "tests.support.upstream",
    "tests.support.dns",
    "tests.support.browser",
    "tests.support.migrations",
    "tests.support.sms",
]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend_name" in metafunc.fixturenames:
        names = list(BACKENDS)
        if os.environ.get("IDP_TEST_MATRIX") != "full":
            names = ["sqlite-sql", "postgres-redis"]
        metafunc.parametrize("backend_name", names, scope="session")


@pytest.fixture(scope="session")
def backend(backend_name: str, tmp_path_factory: pytest.TempPathFactory) -> Backend:
    return backend_or_skip(backend_name, tmp_path_factory)
