"""Handing one SMS to the configured sender (``IDP_SMS_PROVIDER``):

* ``gateway``: a JSON POST of ``{"to", "text"}`` to ``IDP_SMS_URL``, with
  ``Authorization: Bearer IDP_SMS_TOKEN`` when the token is set;
* ``twilio-shaped``: a form-encoded POST of ``To``, ``From`` and ``Body`` to
  ``IDP_SMS_URL/Accounts/<IDP_SMS_ACCOUNT>/Messages.json`` with HTTP basic auth
  (``IDP_SMS_ACCOUNT``, ``IDP_SMS_TOKEN``), the shape of a widely used provider's
  messages API;
* development (no ``IDP_SMS_URL``): printed to the console; the outbox keeps the text
  for ``/dev/outbox``.

Every hand-over has a bounded timeout (``IDP_SMS_TIMEOUT_SECONDS``) and follows no
redirect. A timeout, a network error or any non-2xx answer raises
:class:`SmsDeliveryError`, and the outbox retries with back-off.
"""

from __future__ import annotations

import base64
import json
import logging
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from idp.settings import Settings

log = logging.getLogger("idp.sms")

GATEWAY = "gateway"
MESSAGES_API = "twilio-shaped"
CONSOLE = "console"
PROVIDERS = (GATEWAY, MESSAGES_API)


class SmsDeliveryError(Exception):
    """The sender did not accept the message (retried by the outbox)."""


class SmsConfigError(SmsDeliveryError):
    """The SMS settings are unusable (retried too: an operator may fix them)."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a 3xx is an answer like any other non-2xx: not delivered


_OPENER = urllib.request.build_opener(_NoRedirect)


def provider(settings: Settings) -> str:
    """The sender in use: ``gateway``, ``twilio-shaped`` or ``console``."""
    if not settings.sms_url:
        return CONSOLE
    chosen = (settings.sms_provider or GATEWAY).strip().lower()
    if chosen not in PROVIDERS:
        raise SmsConfigError(f"IDP_SMS_PROVIDER must be one of {', '.join(PROVIDERS)}")
    return chosen


def is_real(settings: Settings) -> bool:
    """True when messages leave the process (not the development console)."""
    return bool(settings.sms_url)


def send(settings: Settings, to: str, text: str) -> None:
    """Hand the SMS ``text`` for ``to`` to the configured sender, or raise
    :class:`SmsDeliveryError`."""
    kind = provider(settings)
    if kind == CONSOLE:
        _print_to_console(to, text)
        return
    url = settings.sms_url or ""
    if not url.startswith(("http://", "https://")):
        raise SmsConfigError("IDP_SMS_URL must be an http or https URL")
    headers: dict[str, str] = {"User-Agent": "Unitgate-SMS/1"}
    if kind == GATEWAY:
        data = json.dumps({"to": to, "text": text}).encode()
        headers["Content-Type"] = "application/json"
        if settings.sms_token:
            headers["Authorization"] = f"Bearer {settings.sms_token}"
    else:
        if not settings.sms_account or not settings.sms_token or not settings.sms_from:
            raise SmsConfigError(
                "twilio-shaped needs IDP_SMS_ACCOUNT, IDP_SMS_TOKEN and IDP_SMS_FROM"
            )
        account = urllib.parse.quote(settings.sms_account, safe="")
        url = f"{url.rstrip('/')}/Accounts/{account}/Messages.json"
        data = urllib.parse.urlencode(
            {"To": to, "From": settings.sms_from, "Body": text}
        ).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        basic = base64.b64encode(f"{settings.sms_account}:{settings.sms_token}".encode())
        headers["Authorization"] = "Basic " + basic.decode()
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")  # noqa: S310
    try:
        with _OPENER.open(request, timeout=settings.sms_timeout_seconds) as response:
            status = response.status
            response.read(65536)
    except urllib.error.HTTPError as exc:
        raise SmsDeliveryError(f"SMS sender answered {exc.code}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise SmsDeliveryError(f"SMS sender unreachable: {exc}") from None
    if not 200 <= status < 300:
        raise SmsDeliveryError(f"SMS sender answered {status}")


def _print_to_console(to: str, text: str) -> None:
    banner = "=" * 20 + " DEVELOPMENT SMS (IDP_SMS_URL unset, not sent) " + "=" * 20
    log.warning("%s\nTo: %s\n\n%s", banner, to, text)
    print(f"\n{banner}\nTo: {to}\n\n{text}\n{'=' * len(banner)}\n", file=sys.stderr, flush=True)
