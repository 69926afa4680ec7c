"""Unitgate: identity provider and SSO gateway for business purchasing."""

from idp.app import create_app

__all__ = ["create_app"]
