"""The wallet profile, unit choice and consent pages of the login interaction."""

from __future__ import annotations

from flask import Response, abort, request
from flask_babel import get_locale

from idp.accounts import lifecycle as accounts
from idp.interaction import pending as interaction
from idp.interaction.pending import Interaction
from idp.login import proof
from idp.login.blueprint import bp
from idp.login.common import acting, acting_unit, expired_page, load, page
from idp.login.email_signin import finish_email_sign_in
from idp.login.flow import merchant_of, next_step, resume, see_other
from idp.login.formstate import FormState, recall, remember
from idp.login.profile_form import FieldSpec, field_specs, validate
from idp.login.release import release_for
from idp.provisioning.errors import Busy
from idp.release import consent
from idp.store.models import Account


def _profile_subject(ix: Interaction) -> tuple[Account | None, str | None]:
    """Whose profile this page edits: (the signed-in account, None) when completing
    an existing wallet, (None, proven address) for a first sign-in, else (None, None)."""
    if ix.authenticated:
        return accounts.get(ix.account_id or ""), None
    return None, proof.peek(ix)


def _specs(ix: Interaction, account: Account | None, email: str | None) -> list[FieldSpec]:
    """The wallet form's fields: names; cost centre and personnel number when there
    is an access to keep them on (the unit chosen for the sign-in or the only one; for
    a first sign-in the unit its address will auto-join); the unit fields of the
    account's units (or of that unit)."""
    if account is not None:
        rows = accounts.accesses(account.id)
        target = accounts.wallet_access(rows, ix.unit_id)
        return field_specs(accounts.unit_fields(account.id, rows), target is not None)
    joins = accounts.joins_unit(email or "")
    return field_specs(accounts.unit_fields_for_new_wallet(email or ""), joins)


@bp.get("/<interaction_id>/profile")
def profile(interaction_id: str) -> Response:
    """The wallet form: names (required), cost centre and personnel number
    (optional) and the fields the account's units define."""
    ix = load(interaction_id)
    account, email = _profile_subject(ix)
    if account is None and email is None:
        return next_step(ix)
    specs = _specs(ix, account, email)
    state = recall(ix, "profile")
    rows = accounts.accesses(account.id) if account is not None else []
    target = accounts.wallet_access(rows, ix.unit_id)
    if account is not None and not state.values:
        for spec in specs:
            if spec.unit_field:  # the value the field's own unit holds
                value = next((a.extra.get(spec.unit_field) for a in rows
                              if spec.unit_field in (a.extra or {})), None)
            elif spec.name in ("cost_centre", "personnel_number"):
                value = getattr(target, spec.name, None) if target is not None else None
            else:
                value = getattr(account, spec.name, "")
            state.values[spec.name] = str(value or "")
    return page(
        "login/profile.html", ix, state, specs=specs,
        email=account.email if account is not None else email,
        first_time=account is None,
        # the company whose wallet this is, with its logo (the header shows the merchant's)
        company={"unit_id": target.unit_id, "name": target.unit.name} if target else None,
    )


@bp.post("/<interaction_id>/profile")
def submit_profile(interaction_id: str) -> Response:
    """Validate the wallet on the server, then create the account (first sign-in)
    and its session, or save the completed profile and go on."""
    ix = load(interaction_id)
    account, email = _profile_subject(ix)
    if account is None and email is None:
        return next_step(ix)
    if account is not None and acting(ix):
        abort(403)
    data, errors, values = validate(request.form, _specs(ix, account, email))
    if errors:
        remember(ix, "profile", FormState(errors=errors, values=values))
        return see_other("login.profile", interaction_id=ix.id)
    if account is not None:
        try:
            accounts.update_wallet(account, data, ix.unit_id)
        except Busy:  # changed concurrently again and again: the form, to save again
            first = next(iter(values), "given_name")
            remember(ix, "profile", FormState(errors={first: "busy"}, values=values))
            return see_other("login.profile", interaction_id=ix.id)
        return next_step(ix)
    proven = proof.consume(ix)
    if proven is None:
        remember(ix, "email", FormState(errors={"email": "proof_expired"}))
        return see_other("login.start", interaction_id=ix.id)
    try:
        created = accounts.create_wallet(proven, data, str(get_locale()))
    except accounts.DuplicateEmail:
        existing = accounts.by_email(proven)
        if existing is None:
            return expired_page()
        created = existing
    return finish_email_sign_in(ix, created, facts=data)


def _signed_in(interaction_id: str) -> tuple[Interaction, Account] | Response:
    ix = load(interaction_id)
    account = accounts.get(ix.account_id or "") if ix.authenticated else None
    if account is None or not account.can_sign_in:
        return next_step(ix)
    return ix, account


@bp.get("/<interaction_id>/unit")
def unit(interaction_id: str) -> Response:
    """Choose the business unit to act for at this merchant (several accesses)."""
    found = _signed_in(interaction_id)
    if isinstance(found, Response):
        return found
    ix, account = found
    memberships = accounts.accesses(account.id)
    if len(memberships) < 2 or acting_unit(ix) is not None:
        return next_step(ix)
    return page("login/unit.html", ix, recall(ix, "unit"), memberships=memberships)


@bp.post("/<interaction_id>/unit")
def submit_unit(interaction_id: str) -> Response:
    """Record the chosen unit (one of the account's) and go on."""
    found = _signed_in(interaction_id)
    if isinstance(found, Response):
        return found
    ix, account = found
    chosen = request.form.get("unit_id", "")
    confined = acting_unit(ix)
    if chosen not in {m.unit_id for m in accounts.accesses(account.id)} or (
        confined is not None and chosen != confined
    ):
        remember(ix, "unit", FormState(errors={"unit_id": "unit_choice"}))
        return see_other("login.unit", interaction_id=ix.id)
    ix.unit_id = chosen
    interaction.save(ix)
    return next_step(ix)


@bp.get("/<interaction_id>/consent", endpoint="consent")
def consent_page(interaction_id: str) -> Response:
    """List exactly the fields this merchant will receive, with their values."""
    found = _signed_in(interaction_id)
    if isinstance(found, Response):
        return found
    ix, account = found
    if ix.consented:
        return resume(ix)
    earlier = consent.current(account.id, merchant_of(ix))  # unticks what was left out
    withheld = list(earlier.withheld or []) if earlier is not None else list(ix.withheld)
    return page("login/consent.html", ix, FormState(),
                release=release_for(ix, account, withheld))


@bp.post("/<interaction_id>/consent")
def submit_consent(interaction_id: str) -> Response:
    """Allow: record the consent, with the optional items the employee unticked left
    out (``share`` lists the ticked ones), and resume. Deny: resume with ``consented``
    false, which the protocol side answers with ``access_denied``."""
    found = _signed_in(interaction_id)
    if isinstance(found, Response):
        return found
    ix, account = found
    decision = request.form.get("decision")
    if decision not in ("allow", "deny"):
        abort(400, "Choose Allow or Deny.")
    if decision == "allow":
        merchant_id = merchant_of(ix)
        if not merchant_id:  # the client or SP was deleted during the sign-in
            return expired_page()
        release = release_for(ix, account)
        offered = release.optional
        # ``choice`` marks a page that offered the boxes; a form without it (a page
        # from before consent per item) listed everything as shared, and shares it
        shared = ([k for k in request.form.getlist("share") if k in offered]
                  if request.form.get("choice") else offered)
        if not acting(ix):  # while acting: this sign-in only, never the person's consent
            ix.withheld = consent.grant(account.id, merchant_id, list(ix.scopes),
                                        release.claim_names, offered, shared)
        else:
            ix.withheld = [k for k in offered if k not in shared]
        ix.consented = True
    else:
        ix.consented = False
    return resume(ix)
