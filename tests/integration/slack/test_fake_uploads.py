"""The Slack fake's strict upload flow and chat.delete, driven by the real slack_sdk client."""

from __future__ import annotations

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.slack import SlackFake, slack_fake

__all__ = ["slack_fake"]


def _client(fake: SlackFake) -> AsyncWebClient:
    return AsyncWebClient(token=fake.bot_token, base_url=fake.api_url)


async def test_upload_v2_shares_the_bytes_in_the_thread(slack_fake: SlackFake) -> None:
    client = _client(slack_fake)
    parent = await client.chat_postMessage(channel="C1", text="quote")
    await client.files_upload_v2(
        channel="C1", thread_ts=parent["ts"], content=b"\x89PNG-bytes", filename="a.png",
        initial_comment="caption",
    )  # fmt: skip
    [file] = slack_fake.files
    assert (file.data, file.thread_ts, file.initial_comment) == (
        b"\x89PNG-bytes",
        parent["ts"],
        "caption",
    )
    assert slack_fake.messages[("C1", str(file.message_ts))].files == [file.id]


async def test_complete_before_upload_and_twice_are_refused(slack_fake: SlackFake) -> None:
    client = _client(slack_fake)
    url = await client.files_getUploadURLExternal(filename="a.png", length=3)
    files = [{"id": url["file_id"], "title": "a"}]
    with pytest.raises(SlackApiError, match="file_upload_not_completed"):
        await client.files_completeUploadExternal(files=files, channel_id="C1")
    async with aiohttp.ClientSession() as session:
        async with session.post(url["upload_url"], data=b"toolong") as short:
            assert short.status == 400  # not the length announced
        async with session.post(url["upload_url"], data=b"abc") as ok:
            assert ok.status == 200
        async with session.post(url["upload_url"], data=b"abc") as again:
            assert again.status == 400
    await client.files_completeUploadExternal(files=files, channel_id="C1")
    with pytest.raises(SlackApiError, match="file_already_completed"):
        await client.files_completeUploadExternal(files=files, channel_id="C1")
    with pytest.raises(SlackApiError, match="file_not_found"):
        await client.files_completeUploadExternal(files=[{"id": "F999"}], channel_id="C1")


async def test_chat_delete_removes_only_the_bots_messages(slack_fake: SlackFake) -> None:
    client = _client(slack_fake)
    posted = await client.chat_postMessage(channel="C1", text="stop note")
    theirs = slack_fake.user_message("C1", "U1", "hello")
    with pytest.raises(SlackApiError, match="cant_delete_message"):
        await client.chat_delete(channel="C1", ts=theirs.ts)
    await client.chat_delete(channel="C1", ts=posted["ts"])
    assert [m.ts for m in slack_fake.deleted] == [posted["ts"]]
    with pytest.raises(SlackApiError, match="message_not_found"):
        await client.chat_delete(channel="C1", ts=posted["ts"])
