"""LDAP / Active Directory: directory configuration, the sync (mapping, plan, apply)
and its scheduler."""
