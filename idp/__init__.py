"""Unitgate: identity provider and SSO gateway for business purchasing."""

# Deliberately empty: ``import idp`` (and so every ``idp.<module>``) does not import
# the app. The factory is ``idp.app.create_app``.
