"""Slack install tokens encrypted at rest: slack_sdk's SQLAlchemy installation store, with every
token (and the incoming webhook's URL) sealed by SLACK_TOKEN_KEY before it is written and opened
when it is read.

slack_sdk writes tokens as they are; anyone who can read the database (a backup, a replica, a
support dump) could then post as the bot in every workspace. With a key, `slack_bots` and
`slack_installations` hold `sealed:v1:` followed by a Fernet token (AES-128-CBC with an
HMAC-SHA256, from the `cryptography` package) instead. Rows written before the key was set stay
readable as they are, and are sealed when the workspace next installs. SLACK_TOKEN_KEY may list
keys, comma-separated: the first seals, any opens (a rotation). A sealed value that no key opens
(another key, or a damaged row) reads as no installation, and the log says so without the value.
"""

from __future__ import annotations

import copy
import logging
from typing import Any, TypeVar

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from slack_sdk.oauth.installation_store import Bot, Installation
from slack_sdk.oauth.installation_store.sqlalchemy import AsyncSQLAlchemyInstallationStore

log = logging.getLogger("parley.slack")

PREFIX = "sealed:v1:"
SEALED_FIELDS = ("bot_token", "bot_refresh_token", "user_token", "user_refresh_token")
INSTALLATION_FIELDS = (*SEALED_FIELDS, "incoming_webhook_url")
Record = TypeVar("Record", Bot, Installation)


class Unreadable(Exception):
    """A sealed value that none of the keys opens."""


class Sealer:
    """Seals with the first of `keys` (comma-separated), opens with any of them: to rotate, put
    the new key first and keep the old one until every workspace has installed again."""

    def __init__(self, keys: str) -> None:
        self._fernet = MultiFernet(
            [Fernet(k.strip().encode()) for k in keys.split(",") if k.strip()]
        )

    def seal(self, value: str | None) -> str | None:
        if not value or value.startswith(PREFIX):
            return value  # nothing to hide, or sealed already (a save that saves its bot too)
        return PREFIX + self._fernet.encrypt(value.encode()).decode()

    def open(self, value: str | None) -> str | None:
        if not value or not value.startswith(PREFIX):
            return value  # written before the key was set
        try:
            return self._fernet.decrypt(value[len(PREFIX) :].encode()).decode()
        except InvalidToken:
            raise Unreadable() from None


class SealedInstallationStore(AsyncSQLAlchemyInstallationStore):
    def __init__(self, client_id: str, *, engine: Any, key: str) -> None:
        super().__init__(client_id, engine=engine)
        self._sealer = Sealer(key)

    async def async_save(self, installation: Installation) -> None:
        await super().async_save(self._with(installation, INSTALLATION_FIELDS, self._sealer.seal))

    async def async_save_bot(self, bot: Bot) -> None:
        await super().async_save_bot(self._with(bot, SEALED_FIELDS, self._sealer.seal))

    async def async_find_bot(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        is_enterprise_install: bool | None = False,
    ) -> Bot | None:
        bot = await super().async_find_bot(
            enterprise_id=enterprise_id,
            team_id=team_id,
            is_enterprise_install=is_enterprise_install,
        )
        return self._opened(bot, SEALED_FIELDS, enterprise_id, team_id)

    async def async_find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        found = await super().async_find_installation(
            enterprise_id=enterprise_id,
            team_id=team_id,
            user_id=user_id,
            is_enterprise_install=is_enterprise_install,
        )
        return self._opened(found, INSTALLATION_FIELDS, enterprise_id, team_id)

    def _opened(
        self, found: Record | None, fields: tuple[str, ...], org: str | None, team: str | None
    ) -> Record | None:
        if found is None:
            return None
        try:
            return self._with(found, fields, self._sealer.open)
        except Unreadable:
            log.error(
                "slack installation of org=%s team=%s cannot be opened with SLACK_TOKEN_KEY"
                " (another key?): treated as not installed",
                org,
                team,
            )
            return None

    @staticmethod
    def _with(record: Record, fields: tuple[str, ...], change: Any) -> Record:
        """A copy of `record` with `fields` changed (slack_sdk's records are plain objects)."""
        changed = copy.copy(record)
        for name in fields:
            if hasattr(changed, name):
                setattr(changed, name, change(getattr(changed, name)))
        return changed
