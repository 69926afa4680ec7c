"""The approval page (issue 17): ``/account/approvals/<approval_id>``, for an
approver signed in as themself. The e-mail link adds ``?link=<signed token>``
(:func:`idp.purchases.approvals.link_token`): it must name this approval and the
signed-in person, else 404. Without a live session the page starts the dashboard
sign-in, which returns to this page (link included) afterwards
(:func:`idp.dashboard.views.safe_next`). The approver may change the amount and the
order's lines (``line-<i>-description``, ``-sku``, ``-quantity``, ``-amount``; a
line whose description is emptied is dropped; ``lines=1`` says the lines were
sent).

Every change is a POST with the CSRF token, answered 303 back to the page."""

from __future__ import annotations

from typing import Any

from flask import Response, render_template, request, url_for
from flask_babel import gettext as _

from idp.dashboard.blueprint import bp
from idp.dashboard.views import _signed_in, _start_login
from idp.errors import error_page
from idp.purchases import approvals, money
from idp.purchases.approvals import ApprovalError, Decision
from idp.web.redirects import redirect

WHY = {
    "over_budget": lambda: _("The order is over the budget left."),
    "over_per_order_limit": lambda: _("The order is over the per-order limit."),
    "approval_policy": lambda: _("The company's approval policy asks for approval above "
                                 "this amount."),
}
# An approval's status in the reader's language (idp.purchases.approvals' values).
STATUS = {
    approvals.PENDING: lambda: _("Waiting for a decision"),
    approvals.APPROVED: lambda: _("Approved"),
    approvals.REJECTED: lambda: _("Rejected"),
    approvals.EXPIRED: lambda: _("Expired"),
    approvals.CANCELLED: lambda: _("Cancelled"),
}
MAX_FORM_LINES = 101  # the order's lines (at most 100) and one empty row to add


def _lines(form: Any) -> list[dict[str, Any]] | None:
    """The lines the approver sent (None: the form had no lines part)."""
    if form.get("lines") != "1":
        return None
    out: list[dict[str, Any]] = []
    for i in range(MAX_FORM_LINES):
        description = (form.get(f"line-{i}-description") or "").strip()
        if not description:
            continue
        out.append({"description": description[:1000],
                    "sku": (form.get(f"line-{i}-sku") or "")[:1000],
                    "quantity": (form.get(f"line-{i}-quantity") or "1")[:20],
                    "amount": (form.get(f"line-{i}-amount") or "")[:40]})
    return out


def _not_found() -> Response:
    html = error_page(404, "not_found", _("This approval does not exist or is not yours."))
    return Response(html, status=404, mimetype="text/html")


def _valid_id(approval_id: str) -> bool:
    return len(approval_id) == 32 and all(c in "0123456789abcdef" for c in approval_id)


@bp.get("/approvals/<approval_id>")
def approval_page(approval_id: str) -> Response:
    """The order, who asks, the budget left, the thread, and the decision forms."""
    found = _signed_in()
    if found is None:
        return _start_login(request.full_path)
    account = found[1]
    if not _valid_id(approval_id):
        return _not_found()
    link = request.args.get("link")
    if link is not None and approvals.read_link(link[:1000]) != (approval_id, account.id):
        return _not_found()
    try:
        v = approvals.view(account.id, approval_id)
    except ApprovalError:
        return _not_found()
    p = v.purchase
    html = render_template(
        "account/approval.html", v=v,
        amount=money.format_minor(p.amount_minor, p.currency),
        budget=money.format_minor(v.standing.remaining, p.currency) if v.standing else None,
        why=WHY.get(v.approval.why, lambda: v.approval.why)(),
        status=STATUS.get(v.approval.status, lambda: v.approval.status)(),
        notice=request.args.get("done") and _("Saved."),
    )
    resp = Response(html, mimetype="text/html")
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.post("/approvals/<approval_id>")
def decide_approval(approval_id: str) -> Response:
    """Approve, reject (with a reason), change the amount or lines, or comment."""
    found = _signed_in()
    if found is None or not _valid_id(approval_id):
        return _not_found()
    account = found[1]
    form = request.form
    amount = (form.get("amount") or "").strip() or None
    decision = Decision(
        action=form.get("action", ""), reason=form.get("reason"), amount=amount,
        lines=_lines(form), comment=form.get("comment"), internal=form.get("internal") == "1",
    )
    try:
        approvals.decide(account.id, approval_id, decision)
    except ApprovalError as exc:
        if exc.code == "not_found":
            return _not_found()
        html = error_page(409 if exc.code == "not_pending" else 422, exc.code, exc.detail,
                          back=(url_for("dashboard.approval_page", approval_id=approval_id),
                                _("Back to the order")))
        return Response(html, status=409 if exc.code == "not_pending" else 422,
                        mimetype="text/html")
    return redirect(url_for("dashboard.approval_page", approval_id=approval_id, done=1),
                    code=303)
