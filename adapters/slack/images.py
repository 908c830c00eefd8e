"""Images on Slack: /image quotes, Generate / Cancel / alternative clicks, uploads.

The core's image flow (bot/images/flow.py) does the deciding; this module renders its offers as
Block Kit (button action_id and value are the flow's stable `img:...` ids, so state stays in the
store and buttons work after a restart), uploads results as files (files.getUploadURLExternal ->
upload -> files.completeUploadExternal, never a link), and tells the clicker why through ephemerals.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError

from adapters.slack.blocks import button, buttons_in
from adapters.slack.surface import NOT_IN_CHANNEL, SlackSurface, Workspaces
from bot.commands.spec import BadOptions, parse
from bot.commands.table import IMAGE
from bot.domain import Actor, ConversationKey
from bot.images.engine import ImageRequest
from bot.images.flow import IMAGES_OFF, QUOTE_NOT_POSTED, click, offer_quote
from bot.images.views import custom_id, outcome_line, unknown_notice
from bot.markup import SLACK
from bot.ports import ImageButton, ImageUpload, MessageRef, QuoteOffer, SurfaceError
from bot.store import ImageJob

if TYPE_CHECKING:
    from slack_bolt.context.respond.async_respond import AsyncRespond

    from bot.app import App

log = logging.getLogger("parley.slack")

PLATFORM = "slack"
ACTION_PATTERN = re.compile(r"^img:")
"""Image buttons' action_id: the flow's custom id ("img:c:<quote>", "img:r:<job>", ...)."""


# -- Block Kit ------------------------------------------------------------------------------------


def image_buttons(buttons: tuple[ImageButton, ...]) -> list[dict[str, Any]]:
    if not buttons:
        return []
    elements = [
        button(b.custom_id, b.label, b.custom_id, "primary" if b.primary else None) for b in buttons
    ]
    return [{"type": "actions", "block_id": "parley_image", "elements": elements}]


def quote_blocks(offer: QuoteOffer) -> list[dict[str, Any]]:
    return [{"type": "markdown", "text": offer.text}, *image_buttons(offer.buttons)]


def regenerate_under(job: ImageJob) -> tuple[ImageButton, ...]:
    """Regenerate on a settled quote once its image is made (uploads carry no buttons)."""
    if job.status == "succeeded":
        return (ImageButton("regenerate", custom_id("regenerate", job.id), "Regenerate"),)
    return ()


# -- the surface ----------------------------------------------------------------------------------


class SlackImageSurface(SlackSurface):
    """The ImageSurface for one place (channel, or a quote's thread) and one clicker; notices
    are ephemerals to the clicker."""

    def __init__(
        self, spaces: Workspaces, *, team: str, channel: str, thread_ts: str | None, user: str
    ) -> None:
        super().__init__(
            spaces, team=team, channel=channel, thread_ts=thread_ts, user=user, native=False
        )

    async def offer(self, offer: QuoteOffer) -> MessageRef:
        response = await self._call(
            "chat.postMessage", self._client.chat_postMessage, channel=self.channel,
            thread_ts=self.thread_ts, text=offer.text, blocks=quote_blocks(offer),
            unfurl_links=False,
        )  # fmt: skip
        return MessageRef(str(response["ts"]), self.channel)

    async def upload(self, image: ImageUpload) -> MessageRef:
        """The image as a file in the quote's thread, captioned; never a link."""
        response = await self._call(
            "files upload", self._client.files_upload_v2, channel=self.channel,
            thread_ts=self.thread_ts, content=image.data, filename=image.filename,
            title=image.filename, alt_txt=image.caption[:1000], initial_comment=image.caption,
        )  # fmt: skip
        files = response.get("files") or [{}]
        return MessageRef(str(files[0].get("id", "")), self.channel)

    async def settle(
        self, message: dict[str, Any], line: str, buttons: tuple[ImageButton, ...]
    ) -> None:
        """Replace a quote's buttons with its outcome line (and Regenerate after an image)."""
        ts = str(message.get("ts") or "")
        kept = [b for b in message.get("blocks") or [] if b.get("type") != "actions"]
        blocks = [
            *kept,
            {"type": "context", "elements": [{"type": "mrkdwn", "text": line}]},
            *image_buttons(buttons),
        ]
        text = f"{message.get('text') or ''}\n{line}".strip()
        await self._slot(self._spaces.updates, final=True)
        try:
            await self._call(
                "chat.update", self._client.chat_update, budget=self._spaces.updates,
                channel=self.channel, ts=ts, text=text, blocks=blocks,
            )  # fmt: skip
        except SurfaceError as exc:
            log.warning("quote not settled channel=%s ts=%s: %s", self.channel, ts, exc)


# -- commands and clicks --------------------------------------------------------------------------


class ImageTurns:
    def __init__(self, app: App, spaces: Workspaces) -> None:
        self.app = app
        self.spaces = spaces

    def _surface(
        self, team: str, channel: str, thread_ts: str | None, user: str
    ) -> SlackImageSurface:
        return SlackImageSurface(
            self.spaces, team=team, channel=channel, thread_ts=thread_ts, user=user
        )

    async def image_command(
        self, team: str, command: dict[str, Any], respond: AsyncRespond
    ) -> None:
        """/image <prompt> [options]: post a quote in the channel; nothing is charged."""
        user, channel, text = command["user_id"], command["channel_id"], command.get("text")
        if self.app.images is None:
            await respond(text=IMAGES_OFF, response_type="ephemeral")
            return
        key = ConversationKey(PLATFORM, team, channel, "")
        try:
            request = ImageRequest(key, user, **parse(IMAGE, str(text or ""), PLATFORM))
        except BadOptions as exc:
            await respond(text=str(exc), response_type="ephemeral")
            return
        surface = self._surface(team, channel, None, user)
        try:
            await offer_quote(self.app.images, request, surface)
        except SurfaceError as exc:
            log.warning("/image could not post team=%s channel=%s: %s", team, channel, exc)
            hint = NOT_IN_CHANNEL if "not_in_channel" in str(exc) else ""
            await respond(text=f"{QUOTE_NOT_POSTED}{hint}", response_type="ephemeral")

    async def click(self, team: str, body: dict[str, Any], action: dict[str, Any]) -> None:
        """Any `img:` button: the flow decides; the quote then shows its outcome instead.

        The clicker is the request's team and user: a quote or job of another workspace is
        unknown to them, even to a user with the same id there."""
        user = body["user"]["id"]
        container = body.get("container") or {}
        channel = str((body.get("channel") or {}).get("id") or container.get("channel_id") or "")
        message = body.get("message") or {}
        ts = message.get("ts") or container.get("message_ts")
        thread = message.get("thread_ts") or container.get("thread_ts") or ts
        surface = self._surface(team, channel, thread, user)
        value = str(action.get("value") or action.get("action_id") or "")
        closed = await click(self.app.images, value, Actor("slack", team, user), surface)
        if closed is not None:
            await self._settle(surface, {**message, "ts": ts}, closed.line, closed.job)

    async def notify_unknown(self, job: ImageJob) -> None:
        """App.watch_unknown_images' callback: tell the requester in the quote's thread and show
        ❓ on the quote."""
        await self.spaces.load(job.tenant)
        quote = await self._find_quote(job)
        thread = str(quote["ts"]) if quote is not None else job.thread_id or None
        client = self.spaces.client_for(job.tenant)
        await client.chat_postMessage(
            channel=job.channel_id,
            thread_ts=thread,
            text=unknown_notice(job, SLACK),
            unfurl_links=False,
        )
        if quote is None:
            log.info("unknown-image job=%s: quote not found, its buttons are left", job.id)
            return
        surface = self._surface(job.tenant, job.channel_id, thread, job.user_id)
        line = outcome_line(job, "unknown")
        if line is not None:
            await surface.settle(quote, line, ())

    async def _find_quote(self, job: ImageJob) -> dict[str, Any] | None:
        """The quote message still offering this job's Generate button, from the latest 200
        messages of its channel (or of its thread); None if not there or not readable."""
        client = self.spaces.client_for(job.tenant)
        try:
            if job.thread_id:
                response = await client.conversations_replies(
                    channel=job.channel_id, ts=job.thread_id, limit=200
                )
            else:
                response = await client.conversations_history(channel=job.channel_id, limit=200)
        except (SlackApiError, SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
            log.warning("quote lookup failed job=%s channel=%s: %r", job.id, job.channel_id, exc)
            return None
        confirm = custom_id("confirm", job.id)
        for message in response.get("messages") or []:
            if confirm in buttons_in(message) and message.get("ts"):
                return dict(message)
        return None

    async def _settle(
        self, surface: SlackImageSurface, message: dict[str, Any], line: str, job: ImageJob
    ) -> None:
        """The quote shows `line` in place of its buttons (and Regenerate, once an image is made:
        a Slack upload carries no buttons of its own)."""
        if not message.get("ts") or not any(ACTION_PATTERN.match(a) for a in buttons_in(message)):
            return
        await surface.settle(message, line, regenerate_under(job))
