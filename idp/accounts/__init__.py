"""Accounts: a person's account and its lifecycle (create, link, update, suspend,
anonymise, delete), field ownership, accesses to units, invitations."""
