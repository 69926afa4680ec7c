"""Provisioning: the write path of HR systems (SCIM) into accounts, the ownership
rules (what a unit may reach), SCIM groups and tokens."""
