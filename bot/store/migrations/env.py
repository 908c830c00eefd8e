"""Alembic environment for Parley.

The usual path is programmatic: `bot.store.migrate` puts a live sync connection in
`config.attributes["connection"]` and the migrations run inside the caller's transaction.
With the plain `alembic` CLI (see alembic.ini) the URL comes from `-x url=...` or
PARLEY_DATABASE_URL and an engine is made the same way the Store makes one.
"""

from __future__ import annotations

import asyncio
import os
from logging.config import fileConfig
from typing import Any, Literal

import sqlalchemy as sa
from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import Connection

from bot.store.engine import WRITE_OPTION, create_engine
from bot.store.tables import UTCDateTime, metadata

config = context.config
target_metadata = metadata


def _render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    # Keep migrations free of imports from the live code: they must stay valid as it changes.
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _configure(**kwargs: Any) -> None:
    context.configure(
        target_metadata=target_metadata,
        render_item=_render_item,
        render_as_batch=True,  # SQLite can only ALTER through batch (copy-and-move) operations
        compare_type=True,
        **kwargs,
    )


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or os.environ.get(
        "PARLEY_DATABASE_URL"
    )
    if not url:
        raise SystemExit("no database URL: pass -x url=... or set PARLEY_DATABASE_URL")
    return url


def _run(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


async def _run_standalone() -> None:
    engine = create_engine(_url())
    try:
        async with engine.connect() as connection:
            await connection.execution_options(**{WRITE_OPTION: True})
            async with connection.begin():
                await connection.run_sync(_run)
    finally:
        await engine.dispose()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    if config.config_file_name is not None:
        fileConfig(config.config_file_name, disable_existing_loggers=False)
    if context.is_offline_mode():
        url = sa.make_url(_url())
        _configure(
            url=url.set(drivername=url.get_backend_name()),
            literal_binds=True,
            dialect_opts={"paramstyle": "named"},
        )
        with context.begin_transaction():
            context.run_migrations()
    else:
        asyncio.run(_run_standalone())
