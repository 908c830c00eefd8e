"""Migration 0014 writes slack_sdk's OAuth tables out (the core imports no platform): they
must stay what slack_sdk's builders make, or its installation and state stores break."""

from __future__ import annotations

import importlib

import sqlalchemy as sa
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore


def shape(metadata: sa.MetaData) -> dict[str, object]:
    return {
        table.name: (
            [(c.name, repr(c.type), c.nullable, c.primary_key) for c in table.columns],
            sorted((i.name, tuple(c.name for c in i.columns), i.unique) for i in table.indexes),
        )
        for table in metadata.sorted_tables
    }


def test_migration_0014_builds_the_tables_slack_sdk_reads() -> None:
    migration = importlib.import_module("bot.store.migrations.versions.0014_slack_installs")
    names = migration.TABLES
    theirs = sa.MetaData()
    SQLAlchemyInstallationStore.build_installations_table(theirs, names[0])
    SQLAlchemyInstallationStore.build_bots_table(theirs, names[1])
    SQLAlchemyOAuthStateStore.build_oauth_states_table(theirs, names[2])
    assert shape(migration._tables()) == shape(theirs)
