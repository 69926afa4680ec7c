"""Business units: the customers' trees of companies and sub-units, their roles and
profile fields."""
