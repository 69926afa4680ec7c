"""Persistence: models, the database handle and repositories.

Only this package imports SQLAlchemy; the rest of Unitgate calls its repository
functions.
"""
