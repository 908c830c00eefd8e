"""The Slack fake's Web API methods: auth, chat (messages, ephemerals, native streams), threads.

Each handler takes the parsed call and returns the fields of an `ok: true` answer, or raises
Invalid with Slack's error code; server.py routes, authenticates and rate-limits before them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.fakes.slack.records import Ephemeral, Message, SlackCall
from tests.fakes.slack.state import BOT_ID, BOT_USER, FakeState
from tests.fakes.slack.validate import (
    MAX_LOADING_MESSAGES,
    MAX_MARKDOWN_TEXT,
    MAX_PROMPTS,
    MAX_TEXT,
    MAX_UPDATE_TEXT,
    Invalid,
    validate_blocks,
)

Handler = Callable[[SlackCall], dict[str, Any]]


class WebMethods(FakeState):
    def method_handlers(self) -> dict[str, Handler]:
        return {
            "auth.test": self._auth_test,
            "chat.postMessage": self._post_message,
            "chat.update": self._update,
            "chat.delete": self._delete,
            "chat.postEphemeral": self._post_ephemeral,
            "chat.startStream": self._start_stream,
            "chat.appendStream": self._append_stream,
            "chat.stopStream": self._stop_stream,
            "assistant.threads.setStatus": self._set_status,
            "assistant.threads.setSuggestedPrompts": self._set_prompts,
            "assistant.threads.setTitle": self._set_title,
            "conversations.replies": self._replies,
            "conversations.history": self._history_of,
            "users.info": self._users_info,
            "apps.connections.open": self._connections_open,
        }

    def _auth_test(self, call: SlackCall) -> dict[str, Any]:
        org = call.team in self.orgs  # an org-wide token: its team is the organization
        return {
            "url": "https://fake.slack.com/",
            "team": "Fake Team",
            "user": "parley",
            "team_id": call.team,
            "user_id": BOT_USER,
            "bot_id": BOT_ID,
            "is_enterprise_install": org,
        } | ({"enterprise_id": call.team} if org else {})

    def _message(self, call: SlackCall, *, ts_arg: str = "ts") -> Message:
        channel, ts = required(call.args, "channel"), required(call.args, ts_arg)
        message = self.messages.get((channel, ts))
        if message is None:
            raise Invalid("message_not_found")
        return message

    def _post_message(self, call: SlackCall) -> dict[str, Any]:
        args = call.args
        channel = required(args, "channel")
        blocks = validate_blocks(args["blocks"]) if "blocks" in args else []
        text = str(args.get("text") or "")
        markdown = args.get("markdown_text")
        if markdown is not None:
            if text or blocks:
                raise Invalid("invalid_arguments", "markdown_text excludes text and blocks")
            if len(markdown) > MAX_MARKDOWN_TEXT:
                raise Invalid("markdown_text_too_long")
            text = markdown
        if not text and not blocks:
            raise Invalid("no_text")
        extra: dict[str, Any] = {}
        if len(text) > MAX_TEXT:
            text = text[:MAX_TEXT]
            extra["warning"] = "message_truncated"
            extra["response_metadata"] = {"warnings": ["message_truncated"]}
        thread_ts = args.get("thread_ts") or None
        message = Message(
            channel, self._next_ts(), text, BOT_USER, thread_ts, blocks, team=call.team or ""
        )
        self._shown(message)
        self.messages[(channel, message.ts)] = message
        return {"channel": channel, "ts": message.ts, "message": wire(message)} | extra

    def _update(self, call: SlackCall) -> dict[str, Any]:
        message = self._message(call)
        args = call.args
        if not message.is_bot:
            raise Invalid("cant_update_message")
        if message.streaming:
            raise Invalid("message_is_streaming")
        text = str(args.get("text") or "")
        if len(text) > MAX_UPDATE_TEXT:
            raise Invalid("msg_too_long")
        blocks = validate_blocks(args["blocks"]) if "blocks" in args else None
        if not text and not blocks:
            raise Invalid("no_text")
        message.text = text
        if blocks is not None:
            message.blocks = blocks
        self._shown(message)
        return {"channel": message.channel, "ts": message.ts, "text": text}

    def _delete(self, call: SlackCall) -> dict[str, Any]:
        message = self._message(call)
        if not message.is_bot:
            raise Invalid("cant_delete_message")
        if message.streaming:
            raise Invalid("message_is_streaming")
        del self.messages[(message.channel, message.ts)]
        self.deleted.append(message)
        return {"channel": message.channel, "ts": message.ts}

    def _post_ephemeral(self, call: SlackCall) -> dict[str, Any]:
        args = call.args
        channel, user = required(args, "channel"), required(args, "user")
        blocks = validate_blocks(args["blocks"]) if "blocks" in args else []
        text = str(args.get("text") or "")
        if not text and not blocks:
            raise Invalid("no_text")
        self.ephemerals.append(Ephemeral(channel, user, text, args.get("thread_ts"), blocks))
        return {"message_ts": self._next_ts()}

    def _stream_text(self, args: dict[str, Any], message: Message | None = None) -> str:
        """The markdown a stream call appends; its task cards go to `message.tasks`."""
        parts = []
        if args.get("markdown_text"):
            if args.get("chunks"):
                raise Invalid("invalid_arguments", "markdown_text excludes chunks")
            parts.append(str(args["markdown_text"]))
        for chunk in args.get("chunks") or []:
            if not isinstance(chunk, dict) or "type" not in chunk:
                raise Invalid("invalid_chunks")
            if chunk["type"] == "markdown_text":
                if not isinstance(chunk.get("text"), str) or not chunk["text"]:
                    raise Invalid("invalid_chunks", "markdown_text needs text")
                parts.append(chunk["text"])
            elif chunk["type"] == "task_update":
                _task(chunk)
                if message is not None:
                    message.tasks[chunk["id"]] = dict(chunk)
                    message.task_updates.append((chunk["id"], chunk["status"]))
            else:
                raise Invalid("invalid_chunks", f"unknown chunk type {chunk['type']!r}")
        text = "".join(parts)
        if len(text) > MAX_MARKDOWN_TEXT:
            raise Invalid("msg_too_long")
        return text

    def _start_stream(self, call: SlackCall) -> dict[str, Any]:
        if not self.native_streaming:
            raise Invalid(self.native_refusal)
        args = call.args
        channel, thread_ts = required(args, "channel"), required(args, "thread_ts")
        if not channel.startswith("D") and not (
            args.get("recipient_user_id") and args.get("recipient_team_id")
        ):
            raise Invalid("missing_recipient_user_id")
        if args.get("task_display_mode", "timeline") not in ("timeline", "plan"):
            raise Invalid("invalid_arguments", "task_display_mode: timeline or plan")
        message = Message(channel, self._next_ts(), "", BOT_USER, thread_ts, team=call.team or "")
        message.text = self._stream_text(args, message)
        message.streaming = message.streamed = True
        self._shown(message)
        self.messages[(channel, message.ts)] = message
        return {"channel": channel, "ts": message.ts}

    def _streaming(self, call: SlackCall) -> Message:
        if not self.native_streaming:
            raise Invalid(self.native_refusal)
        message = self._message(call)
        if not message.streaming:
            raise Invalid("message_not_in_streaming_state")
        return message

    def _append_stream(self, call: SlackCall) -> dict[str, Any]:
        message = self._streaming(call)
        text = self._stream_text(call.args, message)
        if not text and not call.args.get("chunks"):
            raise Invalid("no_text")
        message.text += text
        self._shown(message)
        return {"channel": message.channel, "ts": message.ts}

    def _stop_stream(self, call: SlackCall) -> dict[str, Any]:
        message = self._streaming(call)
        message.text += self._stream_text(call.args, message)
        if "blocks" in call.args:
            message.blocks = validate_blocks(call.args["blocks"])
        message.streaming = False
        self._shown(message)
        return {"channel": message.channel, "ts": message.ts, "message": wire(message)}

    def _set_status(self, call: SlackCall) -> dict[str, Any]:
        required(call.args, "channel_id")
        required(call.args, "thread_ts")
        if "status" not in call.args:
            raise Invalid("invalid_arguments", "status is required")
        loading = call.args.get("loading_messages")
        if loading is not None and (
            not isinstance(loading, list)
            or not 1 <= len(loading) <= MAX_LOADING_MESSAGES
            or not all(isinstance(m, str) and m for m in loading)
        ):
            raise Invalid("invalid_arguments", "loading_messages: 1-10 non-empty strings")
        self.statuses.append(dict(call.args))
        return {}

    def _set_prompts(self, call: SlackCall) -> dict[str, Any]:
        channel = required(call.args, "channel_id")
        required(call.args, "thread_ts")
        prompts = call.args.get("prompts")
        if not isinstance(prompts, list) or not 1 <= len(prompts) <= MAX_PROMPTS:
            raise Invalid("invalid_arguments", "prompts: 1-4 prompts")
        for prompt in prompts:
            if not isinstance(prompt, dict) or set(prompt) != {"title", "message"}:
                raise Invalid("invalid_arguments", "each prompt is {title, message}")
            if not all(isinstance(v, str) and v for v in prompt.values()):
                raise Invalid("invalid_arguments", "a prompt's title and message are text")
        if not channel.startswith("D"):
            raise Invalid("channel_not_found")  # assistant threads live in the app's DM
        self.prompts.append(dict(call.args))
        return {}

    def _set_title(self, call: SlackCall) -> dict[str, Any]:
        required(call.args, "channel_id")
        required(call.args, "thread_ts")
        title = required(call.args, "title")
        self.titles.append((call.args["thread_ts"], title))
        return {}

    def _replies(self, call: SlackCall) -> dict[str, Any]:
        channel, ts = required(call.args, "channel"), required(call.args, "ts")
        parent = self.messages.get((channel, ts))
        if parent is None:
            raise Invalid("thread_not_found")
        found = [parent, *self.thread(channel, ts)]
        return {"messages": [wire(m) for m in found], "has_more": False}

    def _history_of(self, call: SlackCall) -> dict[str, Any]:
        """A channel's top-level messages, newest first (one page of `limit`, default 100)."""
        channel = required(call.args, "channel")
        limit = int(call.args.get("limit") or 100)
        found = [m for m in self.messages.values() if m.channel == channel and not m.thread_ts]
        found.sort(key=lambda m: float(m.ts), reverse=True)
        return {"messages": [wire(m) for m in found[:limit]], "has_more": len(found) > limit}

    def add_user(
        self, user: str, *, team: str = "T0001", is_admin: bool = False, is_owner: bool = False
    ) -> None:
        """A member users.info knows (anyone else is `user_not_found`)."""
        self.users[user] = {
            "id": user,
            "team_id": team,
            "name": user.lower(),
            "deleted": False,
            "is_admin": is_admin,
            "is_owner": is_owner,
            "is_primary_owner": False,
            "is_restricted": False,
            "is_ultra_restricted": False,
            "is_bot": False,
        }

    def _users_info(self, call: SlackCall) -> dict[str, Any]:
        user = self.users.get(required(call.args, "user"))
        if user is None:
            raise Invalid("user_not_found")
        return {"user": dict(user)}

    def _connections_open(self, call: SlackCall) -> dict[str, Any]:
        return {"url": f"ws://127.0.0.1:{self._port}/link"}


TASK_STATUSES = ("pending", "in_progress", "complete", "error")


def _task(chunk: dict[str, Any]) -> None:
    """A task_update chunk as Slack takes it: an id, a title, a known status, text details."""
    extra = set(chunk) - {"type", "id", "title", "status", "details", "output", "sources"}
    if extra:
        raise Invalid("invalid_chunks", f"task_update: unexpected {sorted(extra)}")
    for name in ("id", "title"):
        if not isinstance(chunk.get(name), str) or not chunk[name]:
            raise Invalid("invalid_chunks", f"task_update: {name} is required")
    if chunk.get("status") not in TASK_STATUSES:
        raise Invalid("invalid_chunks", f"task_update: status must be one of {TASK_STATUSES}")
    if "details" in chunk and not isinstance(chunk["details"], str):
        raise Invalid("invalid_chunks", "task_update: details must be text")


def required(args: dict[str, Any], name: str) -> str:
    value = args.get(name)
    if not value or not isinstance(value, str):
        raise Invalid("invalid_arguments", f"missing {name}")
    return value


def wire(message: Message) -> dict[str, Any]:
    wire: dict[str, Any] = {
        "type": "message",
        "ts": message.ts,
        "text": message.text,
        "user": message.user,
        "blocks": message.blocks,
    }
    if message.is_bot:
        wire["bot_id"] = BOT_ID
    if message.thread_ts:
        wire["thread_ts"] = message.thread_ts
    return wire
