"""The Slack fake's file uploads, strictly in Slack's three steps:

1. `files.getUploadURLExternal(filename, length)` -> an upload URL and a file id;
2. the bytes POSTed to that URL, once, exactly `length` of them (HTTP 200 "OK - <n>");
3. `files.completeUploadExternal(files=[{id, title}], channel_id, thread_ts, initial_comment)`
   (or `blocks`) for ids whose bytes arrived, once each; with `channel_id` the file is shared in
   a new message.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tests.fakes.slack.methods import Handler, required
from tests.fakes.slack.records import Message, SlackCall, UploadedFile
from tests.fakes.slack.state import BOT_USER, FakeState
from tests.fakes.slack.validate import Invalid, validate_blocks

MAX_FILE_BYTES = 1024 * 1024 * 1024
"""Slack's limit per file (1 GB)."""
MAX_COMMENT = 4_000


class FileMethods(FakeState):
    def file_handlers(self) -> dict[str, Handler]:
        return {
            "files.getUploadURLExternal": self._upload_url,
            "files.completeUploadExternal": self._complete_upload,
        }

    def shared_files(self, channel: str, thread_ts: str | None = None) -> list[UploadedFile]:
        """Completed files shared in a channel (and thread), oldest first."""
        return [
            f
            for f in self.files
            if f.channel == channel and (thread_ts is None or f.thread_ts == thread_ts)
        ]

    def _upload_url(self, call: SlackCall) -> dict[str, Any]:
        filename = required(call.args, "filename")
        raw = call.args.get("length")
        try:
            length = int(str(raw))
        except ValueError:
            raise Invalid("invalid_arguments", "length must be an integer") from None
        if length <= 0:
            raise Invalid("invalid_arguments", "length must be positive")
        if length > MAX_FILE_BYTES:
            raise Invalid("file_too_large")
        file_id = f"F{next(self._ids):07d}"
        upload = UploadedFile(file_id, filename, length)
        upload.alt_text = str(call.args.get("alt_txt") or "")
        self.uploads[file_id] = upload
        return {"upload_url": f"{self.url}/upload/{file_id}", "file_id": file_id}

    async def _upload(self, request: web.Request) -> web.Response:
        upload = self.uploads.get(request.match_info["id"])
        if upload is None:
            return web.Response(status=404, text="not found")
        if upload.data is not None:
            return web.Response(status=400, text="already uploaded")
        data = await request.read()
        if len(data) != upload.length:
            return web.Response(
                status=400, text=f"length mismatch: {len(data)} bytes, {upload.length} announced"
            )
        upload.data = data
        self._touch()
        return web.Response(text=f"OK - {len(data)}")

    def _complete_upload(self, call: SlackCall) -> dict[str, Any]:
        args = call.args
        files = args.get("files")
        if not isinstance(files, list) or not files:
            raise Invalid("invalid_arguments", "files must be a non-empty array")
        channel = args.get("channel_id") or None
        thread_ts = args.get("thread_ts") or None
        if thread_ts and not channel:
            raise Invalid("invalid_arguments", "thread_ts needs channel_id")
        if thread_ts:
            parent = self.messages.get((str(channel), str(thread_ts)))
            if parent is None or (parent.thread_ts and parent.thread_ts != parent.ts):
                raise Invalid("invalid_thread_ts", "thread_ts must be a parent message's ts")
        comment = args.get("initial_comment") or None
        if comment is not None and len(str(comment)) > MAX_COMMENT:
            raise Invalid("invalid_arguments", "initial_comment too long")
        # Slack ignores blocks when initial_comment is given.
        blocks = validate_blocks(args["blocks"]) if "blocks" in args and not comment else []
        found: list[UploadedFile] = []
        for entry in files:
            file_id = entry.get("id") if isinstance(entry, dict) else None
            upload = self.uploads.get(str(file_id))
            if upload is None:
                raise Invalid("file_not_found")
            if upload.data is None:
                raise Invalid("file_upload_not_completed", f"nothing was uploaded for {file_id}")
            if upload.completed:
                raise Invalid("file_already_completed")
            found.append(upload)
        message_ts = None
        if channel:
            text = str(comment or "")
            message = Message(str(channel), self._next_ts(), text, BOT_USER, thread_ts, blocks,
                              team=call.team or "", files=[f.id for f in found])  # fmt: skip
            self._shown(message)
            self.messages[(message.channel, message.ts)] = message
            message_ts = message.ts
        for upload, entry in zip(found, files, strict=True):
            upload.title = str(entry.get("title") or upload.filename)
            upload.channel, upload.thread_ts = channel, thread_ts
            upload.initial_comment, upload.blocks = comment, blocks
            upload.completed, upload.message_ts = True, message_ts
            self.files.append(upload)
        return {"files": [{"id": f.id, "title": f.title, "name": f.filename} for f in found]}
