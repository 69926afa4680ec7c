"""Helpers for the SCIM tests: business units, tokens made with the real CLI, and a
client that speaks ``application/scim+json`` with a unit's bearer token."""

from __future__ import annotations

import json
from typing import Any

from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from werkzeug.test import TestResponse

from idp.accounts import accesses
from idp.cli import main
from idp.domains import registry as domains
from idp.store.db import db
from idp.store.models import (
    Access,
    Account,
    AuditEvent,
    PermissionGroup,
    Unit,
    UnitProfileField,
)

SCIM_JSON = "application/scim+json"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
UNIT_EXT = "urn:unitgate:params:scim:schemas:extension:unit:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"


def make_unit(app: Flask, slug: str, fields: tuple[str, ...] = (),
              groups: tuple[str, ...] = ("buyer", "approver", "signer"),
              verified: tuple[str, ...] = ()) -> str:  # fmt: skip
    """A business unit with extra profile fields and permission groups, owning the
    ``verified`` domains (verified by hand, as an operator would); returns its id.
    Without a verified domain its SCIM users are pending records
    (``idp.provisioning.ownership``)."""
    with app.app_context():
        unit = Unit(name=slug.title(), slug=slug,
                    permission_group_rows=[PermissionGroup(name=g) for g in groups])
        db.session.add(unit)
        db.session.flush()
        for i, name in enumerate(fields):
            db.session.add(UnitProfileField(unit_id=unit.id, name=name, label=name, position=i))
        db.session.commit()
        for name in verified:
            domains.claim(slug, name)
            domains.verify_manually(name, "test fixture", "test")
        return unit.id


def create_token(runner: FlaskCliRunner, unit: str, name: str = "HR") -> str:
    """A SCIM token for ``unit`` made by ``idp scim-tokens create --json``."""
    args = ["scim-tokens", "create", "--unit", unit, "--name", name, "--json"]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    return str(json.loads(result.output)["token"])


class Scim:
    """A SCIM client for one unit's token."""

    def __init__(self, client: FlaskClient, token: str, prefix: str = "/scim/v2") -> None:
        self.client = client
        self.token = token
        self.prefix = prefix

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        out = {"Authorization": f"Bearer {self.token}", "Accept": SCIM_JSON}
        out.update(extra or {})
        return out

    def call(self, method: str, path: str, body: Any = None,
             headers: dict[str, str] | None = None, **kwargs: Any) -> TestResponse:  # fmt: skip
        data = None if body is None else json.dumps(body)
        return self.client.open(
            self.prefix + path,
            method=method,
            data=data,
            content_type=SCIM_JSON if data is not None else None,
            headers=self.headers(headers),
            **kwargs,
        )

    def get(self, path: str, **kw: Any) -> TestResponse:
        return self.call("GET", path, **kw)

    def post(self, path: str, body: Any, **kw: Any) -> TestResponse:
        return self.call("POST", path, body, **kw)

    def put(self, path: str, body: Any, **kw: Any) -> TestResponse:
        return self.call("PUT", path, body, **kw)

    def patch(self, path: str, *ops: dict[str, Any], **kw: Any) -> TestResponse:
        return self.call("PATCH", path, {"schemas": [PATCH_OP], "Operations": list(ops)}, **kw)

    def delete(self, path: str, **kw: Any) -> TestResponse:
        return self.call("DELETE", path, **kw)


def body(resp: TestResponse, status: int) -> Any:
    """The JSON body after checking the status and the SCIM media type."""
    text = resp.get_data(as_text=True)
    assert resp.status_code == status, f"{resp.status_code}: {text}"
    assert resp.mimetype == SCIM_JSON, resp.mimetype
    return json.loads(text)


def error(resp: TestResponse, status: int, scim_type: str | None = None) -> dict[str, Any]:
    """Check a SCIM error response (RFC 7644 §3.12) and return it."""
    doc = body(resp, status)
    assert doc["schemas"] == [ERROR]
    assert doc["status"] == str(status)
    assert doc.get("scimType") == scim_type, doc
    return doc


def account(app: Flask, account_id: str) -> Account:
    """A fresh, detached copy of an account row."""
    with app.app_context():
        row = db.session.get(Account, account_id)
        assert row is not None
        db.session.expunge(row)
        return row


def access(app: Flask, account_id: str, unit_id: str | None = None) -> Access | None:
    """A fresh, detached copy of the account's access to ``unit_id`` (or its only
    one), read through ``idp.accounts.accesses``; None without one."""
    with app.app_context():
        rows = accesses.of_account(account_id)
        found = next((a for a in rows if unit_id in (None, a.unit_id)), None)
        if found is not None:
            db.session.expunge(found)
        return found


def roles(app: Flask, account_id: str, unit_id: str) -> list[str] | None:
    with app.app_context():
        row = (
            db.session.query(Access)
            .filter_by(account_id=account_id, unit_id=unit_id)
            .one_or_none()
        )
        return None if row is None else list(row.roles)


def audit_actions(app: Flask, target: str) -> list[tuple[str, str]]:
    """(actor, action) of every audit event about ``target``, oldest first."""
    with app.app_context():
        rows = (
            db.session.query(AuditEvent)
            .filter_by(target=target)
            .order_by(AuditEvent.seq)
            .all()
        )
        return [(r.actor, r.action) for r in rows]
