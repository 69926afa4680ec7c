"""Merchants and what they receive: OIDC clients, claims, consent and sign-in records."""
