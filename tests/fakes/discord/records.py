"""What the fake Discord remembers: every call, and the platform state tests assert on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Call:
    """One REST request the fake received, with what it answered."""

    method: str
    path: str  # without the /api/v10 prefix
    route: str  # a stable name: "message.create", "message.edit", "interaction.callback", ...
    body: Any  # parsed JSON (multipart: the payload_json part), or None
    headers: dict[str, str]
    at: float  # time.monotonic() on arrival
    params: dict[str, str] = field(default_factory=dict)
    status: int = 0
    files: list[tuple[str, bytes]] = field(default_factory=list)
    answered_at: float = 0.0
    parts: list[str] = field(default_factory=list)  # multipart: the form fields, in order
    peer: str = ""  # the client's host:port, so one per connection


@dataclass(slots=True)
class Interaction:
    id: str
    token: str
    type: int
    channel_id: str
    guild_id: str | None
    user_id: str
    created: float  # time.monotonic()
    message_id: str | None = None  # the clicked message, for components
    ack_type: int | None = None
    acked_at: float | None = None
    original_id: str | None = None
    choices: list[dict[str, Any]] | None = None  # autocomplete results
    followups: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Guild:
    id: str
    name: str
    roles: dict[str, str]  # name -> id ("@everyone" is the guild id)
    channels: list[str]


@dataclass(frozen=True, slots=True)
class Shown:
    """A message's content as it became visible: created or edited, at time.monotonic()."""

    at: float
    channel_id: str
    message_id: str
    content: str
