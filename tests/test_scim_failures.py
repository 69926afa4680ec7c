"""A database outage answers SCIM clients with a 503 in the SCIM error schema, with a
request id and no internal detail (SECURITY.md "Failure"). The outages are real: a
PostgreSQL URL on a closed port and a SQLite file that cannot be opened."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from idp.app import create_app
from idp.crypto.primitives import generate_master_key
from idp.settings import Settings
from tests.support.processes import free_port
from tests.support.scim import USER, error

LEAKS = re.compile(r"Traceback|File \"|sqlalchemy|psycopg|sqlite3|OperationalError|\.py\b",
                   re.IGNORECASE)


@pytest.mark.parametrize("kind", ["postgres", "sqlite"])
def test_database_down_is_a_scim_503(kind: str, tmp_path: Path) -> None:
    url = (f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nothing" if kind == "postgres"
           else f"sqlite:///{tmp_path / 'missing-dir' / 'x.db'}")
    app = create_app(Settings(issuer="http://localhost", database_url=url,
                              master_key=generate_master_key(), secure_cookies=False))
    client = app.test_client()
    headers = {"Authorization": "Bearer ugscim_" + "x" * 43, "X-Request-Id": "req-scim-503"}
    for resp in (client.get("/scim/v2/Users", headers=headers),
                 client.post("/scim/v2/Users", json={"schemas": [USER], "userName": "a@b.example"},
                             headers=headers)):
        doc = error(resp, 503)
        assert "req-scim-503" in doc["detail"] and resp.headers["Retry-After"]
        assert not LEAKS.search(resp.get_data(as_text=True))
