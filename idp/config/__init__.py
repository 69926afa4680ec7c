"""Declarative configuration (``idp apply`` / ``idp export``), first-run set-up and demo
data."""
