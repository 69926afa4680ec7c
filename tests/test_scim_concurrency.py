"""Concurrent updates lose nothing: two threads PATCH one user (or one group) at the
same moment, many times over; every single change must be in the final state.

The two user PATCHes change different attributes stored in one JSON column (the
unit extension), so a read-modify-write without optimistic concurrency would lose
one of them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask
from flask.testing import FlaskCliRunner

from tests.support.concurrency import run_together
from tests.support.scim import GROUP, UNIT_EXT, USER, Scim, body, create_token, make_unit

ROUNDS = 15




def scim_for(app: Flask, token: str) -> Scim:
    return Scim(app.test_client(), token)


def test_two_concurrent_patches_lose_nothing(app: Flask, runner: FlaskCliRunner) -> None:
    make_unit(app, "acme", fields=("ship_to", "approver"))
    token = create_token(runner, "acme")
    uid = body(scim_for(app, token).post("/Users", {"schemas": [USER],
                                                    "userName": "ann@acme.example"}), 201)["id"]

    def patcher(name: str) -> Callable[[], None]:
        def job() -> None:
            scim = scim_for(app, token)
            for i in range(ROUNDS):
                resp = scim.patch(f"/Users/{uid}", {"op": "Replace", "path": f"{UNIT_EXT}:{name}",
                                                    "value": f"{name}-{i}"})
                body(resp, 200)
        return job

    for _round in range(2):
        before = body(scim_for(app, token).get(f"/Users/{uid}"), 200)["meta"]["version"]
        run_together(patcher("ship_to"), patcher("approver"))
        after = body(scim_for(app, token).get(f"/Users/{uid}"), 200)
        assert after[UNIT_EXT] == {"ship_to": f"ship_to-{ROUNDS - 1}",
                                   "approver": f"approver-{ROUNDS - 1}"}
        # Every one of the 2 x ROUNDS changes was written on top of the previous one.
        assert int(after["meta"]["version"][3:-1]) == int(before[3:-1]) + 2 * ROUNDS


def test_concurrent_member_additions_lose_nothing(app: Flask, runner: FlaskCliRunner) -> None:
    make_unit(app, "acme")
    token = create_token(runner, "acme")
    scim = scim_for(app, token)
    users = [body(scim.post("/Users", {"schemas": [USER], "userName": f"u{i}@acme.example"}),
                  201)["id"] for i in range(2 * ROUNDS)]  # fmt: skip
    gid = body(scim.post("/Groups", {"schemas": [GROUP], "displayName": "All"}), 201)["id"]

    def adder(mine: list[str]) -> Callable[[], None]:
        def job() -> None:
            client = scim_for(app, token)
            for uid in mine:
                resp = client.patch(f"/Groups/{gid}", {"op": "Add", "path": "members",
                                                       "value": [{"value": uid}]})
                assert resp.status_code == 204, resp.get_data(as_text=True)
        return job

    run_together(adder(users[0::2]), adder(users[1::2]))
    members: list[dict[str, Any]] = body(scim.get(f"/Groups/{gid}"), 200)["members"]
    assert sorted(m["value"] for m in members) == sorted(users)
