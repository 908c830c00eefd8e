"""Sync slash commands only when their definitions differ from what Discord already has.

Discord allows 200 command creates a day, so a restart must not re-upload unchanged commands:
fetch what is registered (a read, not a create), compare the fields that matter, and PUT only on
a difference. With DISCORD_DEV_GUILD_IDS the commands go to those guilds (instant), else global.
"""

from __future__ import annotations

import logging
from typing import Any

import discord
from discord import app_commands

log = logging.getLogger("parley.discord")

_OPTION_DEFAULTS = {"required": False, "autocomplete": False}


def _shape(command: dict[str, Any]) -> dict[str, Any]:
    shape: dict[str, Any] = {
        "name": command.get("name"),
        "description": command.get("description", ""),
        "type": command.get("type", 1),
    }
    options = [_option(o) for o in command.get("options") or []]
    if options:
        shape["options"] = options
    return shape


def _option(option: dict[str, Any]) -> dict[str, Any]:
    shape = {k: option.get(k) for k in ("name", "description", "type")}
    for key, default in _OPTION_DEFAULTS.items():
        shape[key] = bool(option.get(key, default))
    for key in ("min_length", "max_length", "min_value", "max_value"):
        if option.get(key) is not None:
            shape[key] = option[key]
    if option.get("choices"):
        shape["choices"] = [{"name": c["name"], "value": c["value"]} for c in option["choices"]]
    if option.get("options"):
        shape["options"] = [_option(o) for o in option["options"]]
    return shape


def definitions_differ(local: list[dict[str, Any]], remote: list[dict[str, Any]]) -> bool:
    def by_name(commands: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        return {c["name"]: _shape(c) for c in commands}

    return by_name(local) != by_name(remote)


async def sync_commands(tree: app_commands.CommandTree[Any], guild_ids: list[str]) -> list[str]:
    """Sync where needed; returns the scopes ("global" or guild ids) that were uploaded."""
    scopes: list[discord.Object | None] = [discord.Object(int(g)) for g in guild_ids] or [None]
    uploaded = []
    for guild in scopes:
        if guild is not None:
            tree.copy_global_to(guild=guild)
        local = [c.to_dict(tree) for c in tree.get_commands(guild=guild)]
        remote: list[dict[str, Any]] = [
            dict(c.to_dict()) for c in await tree.fetch_commands(guild=guild)
        ]
        name = str(guild.id) if guild else "global"
        if definitions_differ(local, remote):
            await tree.sync(guild=guild)
            uploaded.append(name)
            log.info("slash commands synced scope=%s count=%d", name, len(local))
        else:
            log.info("slash commands unchanged scope=%s", name)
    return uploaded
