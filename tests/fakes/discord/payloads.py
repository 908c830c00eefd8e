"""Discord wire objects as the API sends them: snowflakes, users, guilds, channels, messages."""

from __future__ import annotations

import itertools
import threading
import time
from datetime import UTC, datetime
from typing import Any

DISCORD_EPOCH_MS = 1_420_070_400_000
_counter = itertools.count()
_lock = threading.Lock()

TEXT_CHANNEL = 0
DM_CHANNEL = 1
PUBLIC_THREAD = 11

EPHEMERAL = 1 << 6
LOADING = 1 << 7
IS_VOICE_MESSAGE = 1 << 13
IS_COMPONENTS_V2 = 1 << 15


TEXT_DISPLAY = 10


def text_displays(components: list[Any]) -> list[str]:
    """The contents of every Text Display in a Components V2 tree, in order."""
    found: list[str] = []
    for component in components:
        if component.get("type") == TEXT_DISPLAY:
            found.append(str(component.get("content") or ""))
        found.extend(text_displays(component.get("components") or []))
    return found


def text_of(message: dict[str, Any]) -> str:
    """What a message shows as text: `content`, or for a Components V2 message its Text Displays
    (tests and the benchmark read replies through this, whichever kind they are)."""
    if int(message.get("flags") or 0) & IS_COMPONENTS_V2:
        return "\n".join(text_displays(message.get("components") or []))
    return str(message.get("content") or "")


def snowflake() -> str:
    """A fresh id that decodes to now, as discord.py reads creation times from ids."""
    with _lock:
        ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
        return str((ms << 22) | (next(_counter) % 4096))


def iso_now() -> str:
    return datetime.now(UTC).isoformat()


def user(user_id: str, name: str, *, bot: bool = False) -> dict[str, Any]:
    return {
        "id": user_id,
        "username": name,
        "global_name": name,
        "discriminator": "0",
        "avatar": None,
        "bot": bot,
        "public_flags": 0,
    }


def member(user_payload: dict[str, Any], roles: list[str]) -> dict[str, Any]:
    return {
        "user": user_payload,
        "roles": roles,
        "joined_at": iso_now(),
        "deaf": False,
        "mute": False,
        "flags": 0,
        "pending": False,
        "nick": None,
        "avatar": None,
        "permissions": "2248473465835073",
        "communication_disabled_until": None,
    }


def text_channel(channel_id: str, guild_id: str, name: str, position: int = 0) -> dict[str, Any]:
    return {
        "id": channel_id,
        "type": TEXT_CHANNEL,
        "guild_id": guild_id,
        "name": name,
        "position": position,
        "permission_overwrites": [],
        "nsfw": False,
        "parent_id": None,
        "topic": None,
        "last_message_id": None,
        "rate_limit_per_user": 0,
        "flags": 0,
    }


def thread_channel(
    thread_id: str, guild_id: str, parent_id: str, name: str, owner_id: str, archive: int
) -> dict[str, Any]:
    return {
        "id": thread_id,
        "type": PUBLIC_THREAD,
        "guild_id": guild_id,
        "parent_id": parent_id,
        "owner_id": owner_id,
        "name": name,
        "last_message_id": None,
        "rate_limit_per_user": 0,
        "message_count": 0,
        "member_count": 1,
        "flags": 0,
        "thread_metadata": {
            "archived": False,
            "auto_archive_duration": archive,
            "archive_timestamp": iso_now(),
            "locked": False,
            "create_timestamp": iso_now(),
        },
        "total_message_sent": 0,
    }


def dm_channel(channel_id: str, recipient: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": channel_id,
        "type": DM_CHANNEL,
        "recipients": [recipient],
        "last_message_id": None,
    }


def message(
    message_id: str,
    channel_id: str,
    author: dict[str, Any],
    body: dict[str, Any],
    *,
    guild_id: str | None = None,
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id": message_id,
        "channel_id": channel_id,
        "author": author,
        "content": body.get("content") or "",
        "timestamp": iso_now(),
        "edited_timestamp": None,
        "tts": False,
        "mention_everyone": False,
        "mentions": body.get("mentions", []),
        "mention_roles": [],
        "attachments": body.get("attachments", []),
        "embeds": body.get("embeds") or [],
        "components": body.get("components") or [],
        "pinned": False,
        "type": 19 if body.get("message_reference") else 0,
        "flags": body.get("flags") or 0,
    }
    if guild_id is not None:
        payload["guild_id"] = guild_id
    if body.get("message_reference"):
        payload["message_reference"] = body["message_reference"]
    return payload
