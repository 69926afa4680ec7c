"""The browser cookies Unitgate sets for itself: one set of flags for all of them.

Every such cookie is HttpOnly, ``Secure`` unless ``IDP_SECURE_COOKIES=false`` (plain
http in development), ``SameSite=Lax`` (the SAML POST binding is re-delivered, see
``idp/saml/bounce.py``) and valid for the whole site (SECURITY.md, "Sessions").
"""

from __future__ import annotations

from flask import Response

from idp.services import settings


def set_private(response: Response, name: str, value: str, max_age: int) -> None:
    """Set the cookie ``name`` with Unitgate's flags for ``max_age`` seconds."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        httponly=True,
        secure=settings().secure_cookies,
        samesite="Lax",
        path="/",
    )
