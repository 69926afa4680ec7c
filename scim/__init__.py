"""SCIM 2.0 (RFC 7643/7644) for HR systems: ``setup_scim`` in :mod:`scim.app`.

:mod:`scim.casting` converts between SCIM resources and the provisioning domain
(:mod:`idp.provisioning.service`, :mod:`idp.provisioning.unit_groups`); the domain never
imports SCIM.
"""
