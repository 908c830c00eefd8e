"""The fake Discord rejects what Discord rejects, in Discord's own shapes, and rate-limits."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import discord
import pytest
import pytest_asyncio

from adapters.discord.sync import definitions_differ
from bot.text import thread_name
from tests.fakes.discord import FakeDiscord, discord_fake

__all__ = ["discord_fake"]


@pytest_asyncio.fixture
async def http(discord_fake: FakeDiscord) -> AsyncIterator[aiohttp.ClientSession]:
    headers = {"Authorization": f"Bot {discord_fake.token}"}
    async with aiohttp.ClientSession(discord_fake.api_base + "/", headers=headers) as session:
        yield session


async def _post(
    session: aiohttp.ClientSession, channel: str, body: dict[str, Any]
) -> tuple[int, Any]:
    async with session.post(f"channels/{channel}/messages", json=body) as response:
        assert response.headers["Content-Type"] == "application/json"
        return response.status, await response.json()


def _buttons(*custom_ids: str, label: str = "Go") -> list[dict[str, Any]]:
    row = [{"type": 2, "style": 1, "label": label, "custom_id": c} for c in custom_ids]
    return [{"type": 1, "components": row}]


async def test_content_over_2000_is_a_50035_with_the_field_error(
    discord_fake: FakeDiscord, http: aiohttp.ClientSession
) -> None:
    status, body = await _post(http, discord_fake.channel_ids[0], {"content": "x" * 2001})
    assert status == 400 and body["code"] == 50035
    assert body["errors"]["content"]["_errors"][0]["code"] == "BASE_TYPE_MAX_LENGTH"
    assert (await _post(http, discord_fake.channel_ids[0], {"content": "x" * 2000}))[0] == 200


@pytest.mark.parametrize(
    ("components", "path"),
    [
        (_buttons("a" * 101), ["components", "0", "components", "0", "custom_id"]),
        (_buttons("ok", label="l" * 81), ["components", "0", "components", "0", "label"]),
        (_buttons(*"abcdef"), ["components", "0", "components"]),
        (_buttons("a") * 6, ["components"]),
        (_buttons("same", "same"), ["components", "0", "components", "1", "custom_id"]),
    ],
)
async def test_component_limits(
    discord_fake: FakeDiscord, http: aiohttp.ClientSession, components: Any, path: list[str]
) -> None:
    status, body = await _post(
        http, discord_fake.channel_ids[0], {"content": "hi", "components": components}
    )
    assert status == 400 and body["code"] == 50035
    node = body["errors"]
    for part in path:
        node = node[part]
    assert node["_errors"]


async def test_embed_limits(discord_fake: FakeDiscord, http: aiohttp.ClientSession) -> None:
    channel = discord_fake.channel_ids[0]
    assert (await _post(http, channel, {"embeds": [{"description": "d" * 4097}]}))[0] == 400
    assert (await _post(http, channel, {"embeds": [{"title": "t"}] * 11}))[0] == 400
    six = [{"description": "d" * 4000}, {"description": "d" * 2001}]
    assert (await _post(http, channel, {"embeds": six}))[0] == 400


async def test_wrong_content_type_and_bad_token_are_refused(
    discord_fake: FakeDiscord, http: aiohttp.ClientSession
) -> None:
    url = f"channels/{discord_fake.channel_ids[0]}/messages"
    async with http.post(
        url, data=b'{"content":"hi"}', headers={"Content-Type": "text/plain"}
    ) as r:
        assert r.status == 400 and (await r.json())["code"] == 50035
    async with http.get("users/@me", headers={"Authorization": "Bot wrong"}) as r:
        assert r.status == 401


async def test_edit_bucket_answers_429_with_discord_headers(
    discord_fake: FakeDiscord, http: aiohttp.ClientSession
) -> None:
    channel = discord_fake.channel_ids[0]
    _, message = await _post(http, channel, {"content": "hi"})
    statuses = []
    for i in range(6):
        async with http.patch(
            f"channels/{channel}/messages/{message['id']}", json={"content": str(i)}
        ) as r:
            statuses.append(r.status)
            if r.status == 429:
                assert r.headers["Via"] == "1.1 google"
                assert r.headers["X-RateLimit-Scope"] == "user"
                body = await r.json()
                assert body["retry_after"] > 0 and body["global"] is False
            else:
                assert "X-RateLimit-Reset-After" in r.headers
    assert statuses == [200] * 5 + [429]


async def test_real_discord_py_waits_preemptively_and_threads_are_one_per_message(
    discord_fake: FakeDiscord, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(discord.http.Route, "BASE", discord_fake.api_base)
    client = discord.Client(intents=discord.Intents.none())
    async with client:
        await client.login(discord_fake.token)
        channel = await client.fetch_channel(int(discord_fake.channel_ids[0]))
        assert isinstance(channel, discord.TextChannel)
        with pytest.raises(discord.HTTPException) as too_long:
            await channel.send("x" * 2001)
        assert too_long.value.code == 50035
        message = await channel.send("hello")
        for i in range(7):
            await message.edit(content=f"edit {i}")
        assert not discord_fake.rate_limited  # discord.py read the headers and waited
        thread = await message.create_thread(name="t")
        assert thread.id == message.id
        with pytest.raises(discord.HTTPException) as again:
            await message.create_thread(name="t")
        assert again.value.code == 160004


def test_thread_names_come_from_the_prompt_within_100_characters() -> None:
    assert thread_name("<@123> What is   the\nanswer?") == "What is the answer?"
    assert len(thread_name("word " * 100)) == 100
    assert thread_name("   ") == "Parley chat"


def test_command_sync_compares_definitions_not_ids() -> None:
    local = [
        {
            "name": "chat",
            "description": "d",
            "type": 1,
            "options": [{"name": "p", "description": "x", "type": 3, "required": True}],
        }
    ]
    remote = [local[0] | {"id": "1", "version": "2", "application_id": "3"}]
    assert not definitions_differ(local, remote)
    changed = [local[0] | {"description": "new"}]
    assert definitions_differ(changed, remote)


def _form(payload: dict[str, Any] | None, *files: tuple[str, str, bytes]) -> aiohttp.FormData:
    form = aiohttp.FormData()
    if payload is not None:
        form.add_field("payload_json", json.dumps(payload), content_type="application/json")
    for name, filename, data in files:
        form.add_field(name, data, filename=filename, content_type="application/octet-stream")
    return form


async def _upload(
    session: aiohttp.ClientSession, channel: str, form: aiohttp.FormData
) -> tuple[int, Any]:
    async with session.post(f"channels/{channel}/messages", data=form) as response:
        return response.status, await response.json()


async def test_a_file_upload_is_stored_as_an_attachment_with_its_bytes(
    discord_fake: FakeDiscord, http: aiohttp.ClientSession
) -> None:
    channel = discord_fake.channel_ids[0]
    payload = {"content": "here", "attachments": [{"id": 0, "filename": "a.png"}]}
    status, body = await _upload(http, channel, _form(payload, ("files[0]", "a.png", b"PNG")))
    assert status == 200
    (attachment,) = body["attachments"]
    assert attachment["filename"] == "a.png" and attachment["size"] == 3
    assert attachment["content_type"] == "image/png"
    (call,) = discord_fake.calls_to("message.create")
    assert call.parts == ["payload_json", "files[0]"] and call.files == [("a.png", b"PNG")]


async def test_uploads_are_checked_like_discord_checks_them(
    discord_fake: FakeDiscord, http: aiohttp.ClientSession
) -> None:
    channel = discord_fake.channel_ids[0]
    discord_fake.attachment_size_limit = 8
    status, body = await _upload(http, channel, _form({}, ("files[0]", "big.png", b"x" * 9)))
    assert (status, body["code"]) == (413, 40005)
    status, body = await _upload(http, channel, _form({}, ("image", "a.png", b"x")))
    assert (status, body["code"]) == (400, 50035)  # only payload_json and files[n]
    ids = {"attachments": [{"id": 3, "filename": "a.png"}]}
    status, body = await _upload(http, channel, _form(ids, ("files[0]", "a.png", b"x")))
    assert (status, body["code"]) == (400, 50035)  # attachments must name the files sent
    form = aiohttp.FormData()
    form.add_field("payload_json", "{not json", content_type="application/json")
    assert (await _upload(http, channel, form))[1]["code"] == 50109
    async with http.post(
        f"channels/{channel}/messages", data=b"content=hi", headers={"Content-Type": "text/plain"}
    ) as response:
        assert response.status == 400 and (await response.json())["code"] == 50035
    assert discord_fake.messages == {}


async def test_a_204_has_no_content_type_so_discord_py_parses_nothing(
    discord_fake: FakeDiscord, http: aiohttp.ClientSession
) -> None:
    async with http.post(f"channels/{discord_fake.channel_ids[0]}/typing") as response:
        assert response.status == 204 and "Content-Type" not in response.headers


V2 = 1 << 15


def _v2(*texts: str, rows: int = 0) -> dict[str, Any]:
    components: list[dict[str, Any]] = [{"type": 10, "content": t} for t in texts]
    components += _buttons("go") * rows
    return {"flags": V2, "components": components}


async def test_a_components_v2_message_holds_4000_characters_of_text_displays(
    discord_fake: FakeDiscord, http: aiohttp.ClientSession
) -> None:
    channel = discord_fake.channel_ids[0]
    status, message = await _post(http, channel, _v2("x" * 2500, "y" * 1500, rows=1))
    assert status == 200 and message["content"] == "" and message["flags"] & V2
    assert discord_fake.history[message["id"]] == ["x" * 2500 + "\n" + "y" * 1500]
    status, body = await _post(http, channel, _v2("x" * 2500, "y" * 1501))
    assert status == 400 and body["code"] == 50035
    assert body["errors"]["components"]["_errors"][0]["code"] == "BASE_TYPE_MAX_LENGTH"
    status, body = await _post(http, channel, _v2("z" * 4001))
    assert status == 400 and "content" in body["errors"]["components"]["0"]


async def test_components_v2_refuses_legacy_fields_unknown_types_and_more_than_40(
    discord_fake: FakeDiscord, http: aiohttp.ClientSession
) -> None:
    channel = discord_fake.channel_ids[0]
    status, body = await _post(http, channel, {"content": "hi"} | _v2("hi"))
    assert status == 400
    error = body["errors"]["content"]["_errors"][0]
    assert error["code"] == "MESSAGE_CANNOT_USE_LEGACY_FIELDS_WITH_COMPONENTS_V2"
    status, body = await _post(http, channel, {"flags": V2, "components": [{"type": 3}]})
    assert status == 400 and "type" in body["errors"]["components"]["0"]
    status, body = await _post(http, channel, _v2(*["t"] * 41))
    assert status == 400 and body["errors"]["components"]["_errors"][0]["message"].startswith(
        "Must be 40"
    )
    assert (await _post(http, channel, {"flags": V2, "components": []}))[1]["code"] == 50006


async def test_components_v2_past_discords_undocumented_size_is_a_500(
    discord_fake: FakeDiscord, http: aiohttp.ClientSession
) -> None:
    """discord/discord-api-docs#8554: UTF-8 bytes of the displays + 12 each, at most 10,170."""
    channel = discord_fake.channel_ids[0]
    assert (await _post(http, channel, _v2("😀" * 2539 + "ab")))[0] == 200  # 10,158 bytes
    status, body = await _post(http, channel, _v2("😀" * 2539 + "abc"))
    assert status == 500 and body == {"message": "500: Internal Server Error", "code": 0}
    assert (await _post(http, channel, _v2("日本" * 1750)))[0] == 500  # 3,500 characters


async def test_an_edit_cannot_take_a_components_v2_message_back_to_content(
    discord_fake: FakeDiscord, http: aiohttp.ClientSession
) -> None:
    channel = discord_fake.channel_ids[0]
    _, message = await _post(http, channel, _v2("first"))
    path = f"channels/{channel}/messages/{message['id']}"
    async with http.patch(path, json={"content": "legacy now"}) as response:
        assert response.status == 400
    async with http.patch(path, json={"flags": 0, "components": []}) as response:
        body = await response.json()
        assert response.status == 400 and "flags" in body["errors"]
    async with http.patch(path, json=_v2("second", rows=1)) as response:
        assert response.status == 200
    assert discord_fake.history[message["id"]] == ["first", "second"]
