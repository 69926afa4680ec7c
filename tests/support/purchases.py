"""Purchases in tests: a unit with people, a merchant client with the ``purchases``
scope, the person's access token from a real sign-in choosing the unit, and calls of
``/api/v1/purchases`` with it."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from idp.accounts import accesses
from idp.store.unit_of_work import atomic
from tests.support import oidc

SCOPE = "openid profile purchases"
_keys = itertools.count(1)


def person(app: Flask, email: str, unit_id: str, roles: list[str]) -> str:
    """A new account with an active access to ``unit_id`` holding ``roles``."""
    account = oidc.make_account(app, email)
    with app.app_context(), atomic():
        accesses.create(account, unit_id, roles, "test", event=None)
    return account


def merchant(app: Flask, name: str = "Shop") -> oidc.RP:
    return oidc.register(app, name=name, scope="openid profile email purchases org")


def token(app: Flask, client: FlaskClient, rp: oidc.RP, account: str, unit: str,
          scope: str = SCOPE) -> str:
    """The person's access token for ``rp``, the sign-in choosing ``unit``."""
    si = oidc.sign_in(app, client, rp, account, unit_id=unit, scope=scope)
    resp = oidc.exchange(client, rp, si)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return str(resp.get_json()["access_token"])


@dataclass
class Shop:
    """A merchant calling ``/api/v1/purchases`` with one person's token."""

    http: FlaskClient
    access_token: str

    def _headers(self, key: str | None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.access_token}"}
        if key is not None:
            headers["Idempotency-Key"] = key
        return headers

    def buy(self, amount: str, currency: str = "EUR", key: str | None = None,
            **extra: Any) -> Any:
        body = {"order_ref": extra.pop("order_ref", f"o-{next(_keys)}"), "amount": amount,
                "currency": currency, **extra}
        return self.http.post("/api/v1/purchases", json=body,
                              headers=self._headers(key or f"k-{next(_keys)}"))

    def post(self, path: str, json: Any = None, key: str | None = None) -> Any:
        return self.http.post("/api/v1/purchases" + path, json=json,
                              headers=self._headers(key))

    def get(self, purchase_id: str) -> Any:
        return self.http.get(f"/api/v1/purchases/{purchase_id}",
                             headers=self._headers(None))


def employee_budget(app: Flask, unit_slug: str = "acme") -> None:
    """Through the CLI: the unit's employees get 100.00 EUR a month, at most 50.00 an
    order (an order of 80.00 then waits for approval)."""
    from idp.cli import main

    res = app.test_cli_runner().invoke(main, [
        "budgets", "set", "--unit", unit_slug, "--role", "employee", "--period", "month",
        "--amount", "100.00", "--per-order", "50.00", "--currency", "EUR", "--json"])
    assert res.exit_code == 0, res.output
