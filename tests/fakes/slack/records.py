"""What the Slack fake remembers: every call, every message, every response_url use."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class SlackCall:
    """One Web API request: the method, its parsed arguments and how the fake answered."""

    method: str
    args: dict[str, Any]
    team: str | None  # the team of the token, None when the token was refused
    at: float  # time.monotonic()
    http_status: int = 200
    error: str | None = None  # the `error` of an ok:false answer
    response: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def rate_limited(self) -> bool:
        return self.error == "ratelimited"


@dataclass(slots=True)
class Message:
    """A message in a channel, as Slack would show it now."""

    channel: str
    ts: str
    text: str
    user: str  # the author: a user id, or the bot's user id
    thread_ts: str | None = None
    blocks: list[dict[str, Any]] = field(default_factory=list)
    streaming: bool = False
    streamed: bool = False  # posted through chat.startStream
    edits: list[str] = field(default_factory=list)  # every text it showed, in order
    team: str = ""
    files: list[str] = field(default_factory=list)  # ids of the files it shares
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    """A native stream's task cards by id, as last updated (task_update chunks)."""
    task_updates: list[tuple[str, str]] = field(default_factory=list)  # (id, status), in order

    @property
    def is_bot(self) -> bool:
        return self.user.startswith("UBOT")

    def buttons(self) -> list[dict[str, Any]]:
        return [
            element
            for block in self.blocks
            if block.get("type") == "actions"
            for element in block.get("elements", [])
            if element.get("type") == "button"
        ]


@dataclass(slots=True)
class Ephemeral:
    channel: str
    user: str
    text: str
    thread_ts: str | None = None
    blocks: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class ResponseUrl:
    """A response_url handed out with a slash command or an interaction."""

    id: str
    channel: str
    user: str
    uses: int = 0
    posts: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class SocketAck:
    envelope_id: str
    payload: dict[str, Any] | None
    at: float


@dataclass(slots=True)
class UploadedFile:
    """A file through files.getUploadURLExternal -> upload URL -> files.completeUploadExternal."""

    id: str
    filename: str
    length: int  # what getUploadURLExternal was told
    data: bytes | None = None  # what reached the upload URL
    title: str = ""
    alt_text: str = ""
    channel: str | None = None
    thread_ts: str | None = None
    initial_comment: str | None = None
    blocks: list[dict[str, Any]] = field(default_factory=list)
    completed: bool = False
    message_ts: str | None = None  # the message that shares it (when shared in a channel)


@dataclass(frozen=True, slots=True)
class Shown:
    """A message's text as it became visible (posted, updated, streamed), at time.monotonic()."""

    at: float
    channel: str
    ts: str
    text: str
