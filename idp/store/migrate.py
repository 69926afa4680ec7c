"""Schema migrations with Alembic (scripts in ``idp/migrations``)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str) -> None:
    """Bring the database at ``url`` to the newest schema (idempotent)."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), "head")


def current_revision(url: str) -> str | None:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def head_revision(url: str) -> str | None:
    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()


_history: tuple[str | None, frozenset[str]] | None = None


def known_revisions() -> tuple[str | None, frozenset[str]]:
    """This release's head revision and every revision its scripts know (read once)."""
    global _history
    if _history is None:
        script = ScriptDirectory.from_config(alembic_config("sqlite://"))
        _history = (
            script.get_current_head(),
            frozenset(rev.revision for rev in script.walk_revisions()),
        )
    return _history


def schema_is_current(revision: str | None) -> bool:
    """True when a database at ``revision`` suits this release: at its head, or at a
    newer revision it does not know (a newer release migrated it; migrations are
    additive, so old nodes keep running during a rolling upgrade). False when the
    schema is missing or behind (run ``idp migrate``)."""
    head, known = known_revisions()
    if revision is None:
        return False
    return revision == head or revision not in known
