"""The end of authentication, shared by every login method.

A login method (e-mail code here; upstream SSO and LDAP bind elsewhere) proves who
the user is and then calls :func:`finish_authentication`. From there the steps are
the same for all: complete the wallet profile if it lacks required data, choose the
business unit when the account has several, ask for consent unless earlier consent
covers the request, and finally send the browser (303) to the protocol's resume
endpoint, ``url_for(ix.resume_endpoint, interaction_id=ix.id)``.

Example, in a connector's callback view::

    account = link_or_create(identity)
    return finish_authentication(ix, account, amr=["fed"], acr=None)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from flask import Response, url_for
from flask_babel import gettext

from idp.accounts import lifecycle as accounts
from idp.errors import error_response
from idp.factors import acr as acr_levels
from idp.factors import totp
from idp.interaction import pending as interaction
from idp.interaction import sessions
from idp.interaction.pending import Interaction
from idp.login import common
from idp.observability import metrics
from idp.release import consent, merchants
from idp.store.models import Account
from idp.web.redirects import redirect

# Unitgate's own employee dashboard (``idp.dashboard``): no merchant, nothing released,
# so a sign-in there needs neither a unit choice nor consent.
OWN_PROTOCOL = common.OWN_PROTOCOL


def merchant_of(ix: Interaction) -> str:
    """The id of the merchant ``ix`` signs in to, "" when there is none (Unitgate's
    own dashboard, or a client or SP deleted meanwhile). Interactions carry it from
    the protocol side (no query); one stored by an older node during a rolling
    upgrade has none, and it is looked up once by the protocol identifier."""
    if ix.merchant_id or ix.protocol == OWN_PROTOCOL:
        return ix.merchant_id
    if ix.protocol == "oidc":
        found = merchants.of_client(ix.client_id)
    else:
        found = merchants.of_service_provider(ix.client_id)
    ix.merchant_id = found.id if found is not None else ""
    return ix.merchant_id


def back_to_merchant(ix: Interaction) -> tuple[str, str] | None:
    """(URL, link text) of the merchant of ``ix`` for an error page's way back: the
    origin of its registered redirect or ACS URL (never an address from the request
    alone); None when there is none (the start page is offered instead)."""
    home = interaction.merchant_home(ix.params)
    if home is None:
        return None
    return home, gettext("Back to %(merchant)s", merchant=ix.client_name)


def see_other(endpoint: str, **values: Any) -> Response:
    """A 303 See Other to ``endpoint`` (RFC 9110 §15.4.4): the browser follows with a
    GET, never re-posting the form."""
    return redirect(url_for(endpoint, **values), code=303)


def finish_authentication(
    ix: Interaction, account: Account, amr: list[str], acr: str | None = None
) -> Response:
    """Record that ``account`` authenticated in ``ix`` with methods ``amr`` (RFC 8176
    values) and ``acr`` (None: the level ``amr`` reached, :func:`idp.factors.acr.achieved`):
    when a TOTP code is still owed (:func:`idp.factors.totp.owed`: a unit's policy, the
    account's own TOTP, or the merchant's step-up request ``ix.require_mfa``) hold the
    first factor and send the browser to the TOTP page without a session; otherwise
    start a new server-side session (a fresh id, ending the
    browser's previous one), fill the interaction and save it, and return the 303 to
    the next step (:func:`next_step`). An account that may not sign in (blocked,
    deactivated, locked) gets a 403 page and no session."""
    method = "+".join(sorted(amr)) or "none"
    if not account.can_sign_in:
        metrics.count(metrics.SIGNINS, method, "denied")
        return error_response(
            403, "access_denied", "This account cannot sign in at the moment. "
            "Please contact your administrator.", back=back_to_merchant(ix),
        )
    acr = acr_levels.achieved(amr, acr)
    if totp.owed(account.id, amr, ix.require_mfa):
        # Second factor first (idp.factors.totp): no session, no consent, no resume before it.
        totp.hold(ix.id, account.id, list(amr), acr)
        ix.account_id = ix.auth_time = ix.session_id_hash = None
        ix.email = account.email
        interaction.save(ix)
        metrics.count(metrics.SIGNINS, method, "second_factor_owed")
        return see_other("login.totp", interaction_id=ix.id)
    metrics.count(metrics.SIGNINS, method, "success")
    row = sessions.create(account.id, amr=list(amr), acr=acr)
    ix.account_id = account.id
    ix.email = account.email
    ix.auth_time = time.time()
    ix.amr = list(amr)
    ix.acr = acr
    ix.session_id_hash = row.id_hash
    ix.unit_id = None
    ix.consented = False
    return _continue(ix, account)  # saves ix; the TOTP question was answered above


def next_step(ix: Interaction) -> Response:
    """The 303 to where ``ix`` continues: the e-mail page when not authenticated, the
    TOTP page when a second factor is owed (:func:`idp.factors.totp.owed`, step-up too), the
    wallet profile when required data is missing, the unit choice when the account
    has several units and none is chosen (not for :data:`OWN_PROTOCOL`), the consent
    page when consent is needed (never for :data:`OWN_PROTOCOL`), and otherwise
    (consent covered, ``prompt`` without ``consent``) the protocol's resume endpoint
    with ``ix.consented`` set."""
    if not ix.authenticated:
        return see_other("login.start", interaction_id=ix.id)
    account = accounts.get(ix.account_id or "")
    if account is None or not account.can_sign_in:
        ix.account_id = ix.auth_time = ix.session_id_hash = None
        interaction.save(ix)
        return see_other("login.start", interaction_id=ix.id)
    if totp.owed(account.id, ix.amr, ix.require_mfa):  # a live session without it
        return see_other("login.totp", interaction_id=ix.id)
    return _continue(ix, account)


def _continue(ix: Interaction, account: Account) -> Response:
    """:func:`next_step` after the account check and the TOTP question: profile, unit,
    consent, resume. Saves ``ix`` once (unless the browser only goes to the profile)."""
    account_memberships = accounts.accesses(account.id)
    if not accounts.profile_complete(account, account_memberships):
        interaction.save(ix)
        return see_other("login.profile", interaction_id=ix.id)
    if ix.protocol == OWN_PROTOCOL and not ix.scopes and not ix.claims:
        ix.consented = True
        return resume(ix)
    unit_ids = [m.unit_id for m in account_memberships]
    confined = common.acting_unit(ix)
    if confined is not None:  # an actor acts in the impersonation's unit only
        unit_ids = [u for u in unit_ids if u == confined]
    if ix.unit_id not in unit_ids:
        if len(unit_ids) > 1:
            ix.unit_id = None
            interaction.save(ix)
            return see_other("login.unit", interaction_id=ix.id)
        ix.unit_id = unit_ids[0] if unit_ids else None
    withheld = None if "consent" in ix.prompt else consent.covered(
        account.id, merchant_of(ix), ix.scopes, ix.claims
    )
    if withheld is not None:
        ix.consented = True
        ix.withheld = withheld
        return resume(ix)
    interaction.save(ix)
    return see_other("login.consent", interaction_id=ix.id)


_INLINE_RESUMES: dict[str, Callable[[Interaction], Response]] = {}


def resume_inline(endpoint: str, finish: Callable[[Interaction], Response]) -> None:
    """Let :func:`resume` answer for the protocol whose resume endpoint is
    ``endpoint`` in the same response: ``finish(ix)`` does what that endpoint does for
    an interaction this browser already loaded (and answers with a redirect, turned
    into a 303 here). It saves the browser one round trip at the end of every login."""
    _INLINE_RESUMES[endpoint] = finish


def resume(ix: Interaction) -> Response:
    """Back to the protocol side, which answers the merchant: in this response when
    the protocol registered :func:`resume_inline` (``ix`` as it is in memory, its
    stored copy consumed there), otherwise ``ix`` is saved and the browser gets a 303
    to the protocol's resume endpoint."""
    finish = _INLINE_RESUMES.get(ix.resume_endpoint)
    if finish is None:
        interaction.save(ix)
        return see_other(ix.resume_endpoint, interaction_id=ix.id)
    resp = finish(ix)
    if resp.status_code in (301, 302, 307):
        resp.status_code = 303  # after a POST: never re-post to the merchant
    return resp
