"""What the e-mail code adds to the shared end of authentication.

An e-mail code proves that the person controls the address. Two things follow from
that, and only from that (upstream SSO and LDAP sign-ins never reach this module):

* the account's ``email_verified`` becomes true (an address changed and not yet
  proven is proven now);
* the domain rules run (:func:`idp.domains.rules.apply_auto_join`): a verified company
  domain with ``auto_join`` gives the membership with its default role or mapped
  sub-unit, so the ``org`` claims at the merchant name the unit. Consumer domains,
  unverified claims and accounts already in the company join nothing.

Home-realm discovery (:func:`sso_instead_of_code`) is the other half: a domain that
requires SSO never gets or redeems a code, except for its break-glass addresses.
"""

from __future__ import annotations

from typing import Any

from flask import Response

from idp import audit
from idp.accounts import lifecycle as accounts
from idp.domains import rules as domain_rules
from idp.federation.home_realm import redirect_for
from idp.interaction.pending import Interaction
from idp.login.flow import finish_authentication
from idp.store.models import Account

AMR_EMAIL_OTP = ["otp"]  # RFC 8176 §2: a one-time code


def confirm_address(account: Account) -> Account:
    """Mark ``account``'s address verified (audited) when it is not yet: the caller has
    just redeemed a code sent to exactly that address. Returns the account."""
    return accounts.confirm_address(account)


def finish_email_sign_in(
    ix: Interaction, account: Account, facts: dict[str, Any] | None = None
) -> Response:
    """Finish ``ix`` for ``account`` after a redeemed e-mail code: confirm the
    address, join the unit its domain rules give (at most once; see
    :func:`idp.domains.rules.apply_auto_join`), then the shared steps of
    :func:`idp.login.flow.finish_authentication` (session, wallet, unit choice,
    consent). An account that may not sign in joins nothing and gets the 403 page.
    ``facts``: the employer facts of a first wallet form (cost centre, personnel
    number, unit fields under ``extra``), kept on the access the sign-in joins."""
    if account.can_sign_in:
        account = confirm_address(account)
        domain_rules.apply_auto_join(
            account, actor=audit.account_actor(account.id), facts=facts
        )
    return finish_authentication(ix, account, AMR_EMAIL_OTP)


def sso_instead_of_code(ix: Interaction, email: str | None) -> Response | None:
    """The answer that replaces sending or redeeming a code for ``email``: the 303 to
    the unit's upstream IdP for a ``require_sso`` domain, the "sign-in refused" page
    (403) when that domain has no usable connector, or None when an e-mail code is
    allowed (no such rule, or a break-glass address)."""
    if not email:
        return None
    return redirect_for(ix, email)


def sso_for_login_hint(ix: Interaction) -> Response | None:
    """Identifier-first login from the merchant's ``login_hint`` (OIDC Core §3.1.2.1):
    the 303 straight to the upstream IdP when the hinted address's domain requires
    SSO, otherwise None (the e-mail page is shown, prefilled). Only the first visit
    follows the hint: once the browser went upstream, ``ix.email`` is set, so coming
    back shows the e-mail page instead of looping."""
    if not ix.login_hint or ix.email:
        return None
    from idp.accounts import lifecycle as accounts

    try:
        email = accounts.normalise_email(ix.login_hint[:1000])
    except accounts.InvalidEmail:
        return None
    if not isinstance(domain_rules.login_method_for_email(email), tuple):
        return None
    return redirect_for(ix, email)
