"""Purchase authorisation for merchants (issue 17, item 2): ``/api/v1/purchases``.

Unlike the rest of ``/api/v1`` the caller is a *merchant*: an OIDC client presenting
the access token a person's sign-in gave it (OAuth bearer, RFC 6750), with the scope
``purchases``. The token is verified like UserInfo verifies it (our signature, not
revoked, grant live, account allowed to sign in); the buyer is the token's person
and the unit the one chosen at that sign-in. A purchase is visible only to the
client that asked for it: any other client gets 404.

``POST /purchases`` needs an ``Idempotency-Key`` (:mod:`idp.api.idempotency`, keyed
per client and person): a retry gets the first answer, the same key with another
body 422 ``idempotency_key_reused``. The rules live in
:mod:`idp.purchases.authorise`; see ``docs/purchases.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from flask import Response, json, request
from pydantic import BaseModel, ConfigDict, Field

from idp.api import bp, idempotency
from idp.api.endpoint import PATH_PARAM_RE, _body
from idp.api.problems import Problem
from idp.oidc import dpop
from idp.oidc.liveness import LiveAccessToken, access_token_active
from idp.oidc.verification import MAX_TOKEN_BYTES, verify_access_token
from idp.purchases import approvals, authorise, money, offer
from idp.purchases.authorise import PurchaseError, PurchaseRequest
from idp.rights import Actor
from idp.store.models import Purchase

SCOPE = "purchases"
REALM = 'Bearer realm="unitgate-purchases"'
MAX_LINES = 100
AMOUNT = r"^(0|[1-9][0-9]{0,14})(\.[0-9]{1,3})?$"


class LineIn(BaseModel):
    """One line of the order, shown to approvers."""

    model_config = ConfigDict(extra="forbid")

    sku: str | None = Field(None, max_length=100)
    description: str = Field(min_length=1, max_length=300)
    quantity: int = Field(1, ge=1, le=1_000_000)
    amount: str = Field(pattern=AMOUNT, description="Line total, decimal string")


class PurchaseIn(BaseModel):
    """A merchant's request to let the signed-in person buy."""

    model_config = ConfigDict(extra="forbid")

    order_ref: str = Field(min_length=1, max_length=200, description="The merchant's reference")
    amount: str = Field(pattern=AMOUNT, description="Order total, decimal string: 100.00")
    currency: str = Field(min_length=3, max_length=3, description="ISO 4217 code")
    lines: list[LineIn] = Field(default_factory=list, max_length=MAX_LINES)


class AmountIn(BaseModel):
    """A changed order total."""

    model_config = ConfigDict(extra="forbid")

    amount: str = Field(pattern=AMOUNT)


def _problem(status: int, error: str, detail: str) -> Problem:
    challenge = f'{REALM}, error="{error}", scope="{SCOPE}"'
    return Problem(status, error, detail, headers={"WWW-Authenticate": challenge})


def _merchant() -> LiveAccessToken:
    """The person's live access token, presented by the merchant, with the scope: as
    ``Bearer``, or as ``DPoP`` with a proof when the token is DPoP-bound (RFC 9449 §7,
    :func:`idp.oidc.dpop.check_presentation`)."""
    presented = dpop.authorization(request.headers.get("Authorization", ""))
    if presented is None:
        raise Problem(401, "unauthenticated", "Send the person's access token (Bearer).",
                      headers={"WWW-Authenticate": f'{REALM}, scope="{SCOPE}"'})
    scheme, value = presented
    if len(value) > MAX_TOKEN_BYTES:
        raise _problem(401, "invalid_token", "The access token is malformed.")
    token = verify_access_token(value)
    live = access_token_active(token) if token is not None else None
    if token is None or live is None or live.grant is None or live.account is None:
        raise _problem(401, "invalid_token", "The access token is invalid or revoked.")
    try:
        dpop.check_presentation(token.jkt, scheme, value, request.headers.getlist("DPoP"),
                                request.method, request.path)
    except (dpop.WrongScheme, dpop.InvalidProof) as exc:
        error = "invalid_token" if isinstance(exc, dpop.WrongScheme) else dpop.error_code(exc)
        challenge = {"WWW-Authenticate": dpop.challenge(error), **dpop.nonce_headers()}
        raise Problem(401, error, str(exc), headers=challenge) from None
    if SCOPE not in live.token.scopes:
        raise _problem(403, "insufficient_scope", "The token lacks the scope 'purchases'.")
    return live


def _iso(when: datetime) -> str:
    return when.isoformat()


def _may_have_approval(row: Purchase) -> bool:
    """False for purchases that never waited (no query for them)."""
    if row.status == "refused":
        return row.reason in ("rejected", "approval_expired")
    return row.status == "pending_approval" or row.updated_at != row.created_at


def describe(row: Purchase, facts: dict[str, Any] | None = None) -> dict[str, Any]:
    """The purchase as its merchant sees it; with ``facts`` (the ``purchases`` claims
    after this answer, :mod:`idp.purchases.offer`) its ``budget``,
    ``approval_required_above`` and ``payment_methods``."""
    return {
        "id": row.id,
        "status": row.status,
        "reason": row.reason,
        "order_ref": row.order_ref,
        "amount": money.format_minor(row.amount_minor, row.currency),
        "currency": row.currency,
        "lines": list(row.lines or []),
        "unit_id": row.unit_id,
        "created_at": _iso(row.created_at),
        "updated_at": _iso(row.updated_at),
        "approval": approvals.merchant_view(row) if _may_have_approval(row) else None,
        **(
            {
                "budget": facts.get("budget"),
                "approval_required_above": facts.get("approval_required_above"),
                "payment_methods": facts.get("payment_methods", []),
            }
            if facts is not None else {}
        ),
    }


def _json(data: dict[str, Any], status: int = 200) -> Response:
    resp = Response(json.dumps(data), status=status, mimetype="application/json")
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _refused(exc: PurchaseError) -> Problem:
    if exc.code == "not_found":
        return Problem(404, "not_found", "No such purchase.")
    if exc.code == "wrong_state":
        return Problem(409, exc.code, exc.detail)
    errors = [{"pointer": f"/body/{exc.field}", "detail": exc.detail}] if exc.field else None
    return Problem(422, exc.code, exc.detail, errors=errors)


def _keyed(live: LiveAccessToken, run: Callable[[], Response]) -> Response:
    # Idempotency keys are kept per client *and* person, so one person's retry never
    # replays another's answer.
    who = Actor.client(f"{live.token.client_id}/{live.token.sub}")
    return idempotency.run(who, run)


def _path_id(purchase_id: str) -> str:
    if len(purchase_id) > 64 or not PATH_PARAM_RE.match(purchase_id):
        raise Problem(404, "not_found", "No such purchase.")
    return purchase_id


@bp.route("/purchases", methods=["POST"])
def create_purchase() -> Response:
    """Authorise a purchase: 201 with ``status`` approved, pending_approval or
    refused (with ``reason``)."""
    live = _merchant()
    if request.headers.get(idempotency.HEADER) is None:
        raise Problem(400, "idempotency_key_required", "Send an Idempotency-Key header.")
    grant = live.grant
    assert grant is not None

    def run() -> Response:
        body: PurchaseIn = _body(PurchaseIn)  # type: ignore[assignment]
        req = PurchaseRequest(
            order_ref=body.order_ref, amount=body.amount, currency=body.currency,
            lines=[line.model_dump() for line in body.lines],
        )
        try:
            row, ctx, applied, used = authorise.authorise_in_context(
                live.token.client_id, grant.account_id, grant.unit_id, req
            )
        except PurchaseError as exc:
            raise _refused(exc) from exc
        return _json(describe(row, offer.claims_in(ctx, applied, used)), 201)

    return _keyed(live, run)


@bp.route("/purchases/<purchase_id>", methods=["GET"])
def get_purchase(purchase_id: str) -> Response:
    """The purchase, for the client that asked for it only (else 404)."""
    live = _merchant()
    row = authorise.get(live.token.client_id, _path_id(purchase_id))
    if row is None:
        raise Problem(404, "not_found", "No such purchase.")
    return _json(describe(row))


def _change(purchase_id: str, action: Callable[[str, str], Purchase]) -> Response:
    live = _merchant()
    pid = _path_id(purchase_id)

    def run() -> Response:
        try:
            row = action(live.token.client_id, pid)
        except PurchaseError as exc:
            raise _refused(exc) from exc
        return _json(describe(row))

    return _keyed(live, run)


@bp.route("/purchases/<purchase_id>/confirm", methods=["POST"])
def confirm_purchase(purchase_id: str) -> Response:
    """Spend the reservation of an approved purchase."""
    return _change(purchase_id, authorise.confirm)


@bp.route("/purchases/<purchase_id>/cancel", methods=["POST"])
def cancel_purchase(purchase_id: str) -> Response:
    """Release the reservation (approved or pending purchases)."""
    return _change(purchase_id, authorise.cancel)


@bp.route("/purchases/<purchase_id>/amount", methods=["POST"])
def change_amount(purchase_id: str) -> Response:
    """Report a changed order total: checked again; 409 with the refusal's reason
    as its code when the new amount does not fit (the old reservation stays)."""
    live = _merchant()
    pid = _path_id(purchase_id)

    def run() -> Response:
        body: AmountIn = _body(AmountIn)  # type: ignore[assignment]
        try:
            row, reason = authorise.change_amount(live.token.client_id, pid, body.amount)
        except PurchaseError as exc:
            raise _refused(exc) from exc
        if reason is not None:
            raise Problem(409, reason, "The new amount does not fit; the old one stands.")
        return _json(describe(row))

    return _keyed(live, run)
