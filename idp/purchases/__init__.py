"""Purchases, budgets and approvals (issue 17): merchants ask Unitgate whether a
person may buy on their unit's account before an order goes through.

* :mod:`idp.purchases.money`: integer minor units, strict decimal parsing.
* :mod:`idp.purchases.periods`: calendar periods in a unit's time zone.
* :mod:`idp.purchases.budgets`: setting budgets, and which ones apply to a person.
* :mod:`idp.purchases.authorise`: a merchant's purchase: reserve, confirm, cancel.
* :mod:`idp.purchases.events`: the one place every purchase event goes through.

See ``docs/purchases.md``.
"""
