"""Alembic, driven from code: the migrations ship inside the package and need no working directory.

These helpers are synchronous and take a *sync* `Connection`; the Store runs them through
`AsyncConnection.run_sync`, inside its own transaction, so they never block the event loop.

Alembic (with Mako and Pygments, ~10 MB and ~70 ms) is imported only when a database is not at
SCHEMA_REVISION already: a bot that starts on its own database never loads it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, inspect, text

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
SCHEMA_REVISION = "0015"
"""The newest migration's revision (a test holds it to Alembic's head)."""


def alembic_config(connection: Connection | None = None) -> Config:
    """A Config pointing at the packaged migrations; env.py uses `connection` when given."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade(connection: Connection, revision: str = "head") -> None:
    if revision == "head" and current_revision(connection) == SCHEMA_REVISION:
        return
    from alembic import command

    command.upgrade(alembic_config(connection), revision)


def current_revision(connection: Connection) -> str | None:
    """The database's revision, read from Alembic's own table without loading Alembic."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    rows = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    return rows[0] if len(rows) == 1 else None


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()
