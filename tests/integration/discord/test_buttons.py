"""Stop and Regenerate: requester only, persistent across restarts, expired ones say so."""

from __future__ import annotations

from tests.fakes.discord import FakeDiscord
from tests.fakes.llm_server import LLMFake, workers_stream
from tests.integration.discord.conftest import Running, ephemeral_texts, start_bot


async def _streaming_reply(fake: FakeDiscord, llm: LLMFake, channel: str) -> dict:
    llm.queue("workers", workers_stream([f"chunk{i} " for i in range(40)], delay=0.05))
    await fake.slash("chat", {"prompt": "Tell me a long story"}, channel=channel)
    return await fake.wait_until(
        lambda: next(
            (
                m
                for m in fake.bot_messages(channel)
                if any(c.startswith("parley:stop:") for c in fake.custom_ids(m))
            ),
            None,
        ),
        what="a streaming reply with Stop",
    )


async def test_stop_ends_the_stream_keeps_the_partial_text_and_stores_it_interrupted(
    discord_fake: FakeDiscord, llm_fake: LLMFake, bot: Running
) -> None:
    channel = discord_fake.channel_ids[0]
    message = await _streaming_reply(discord_fake, llm_fake, channel)
    stop_id = discord_fake.custom_ids(message)[0]
    click = await discord_fake.click(message["id"], stop_id, user="alice")
    final = await discord_fake.wait_until(
        lambda: discord_fake.finished(channel), what="stopped reply"
    )
    assert click.ack_type == 6
    assert final["content"].startswith("chunk0") and final["content"].endswith("_(stopped)_")
    assert "chunk39" not in final["content"]
    turn = await bot.app.store.get_message(int(stop_id.rsplit(":", 1)[1]))
    assert turn is not None and turn.status == "interrupted"
    assert turn.content.startswith("chunk0")


async def test_buttons_pressed_by_someone_else_get_an_ephemeral_not_yours(
    discord_fake: FakeDiscord, llm_fake: LLMFake, bot: Running
) -> None:
    channel = discord_fake.channel_ids[1]
    message = await _streaming_reply(discord_fake, llm_fake, channel)
    click = await discord_fake.click(message["id"], discord_fake.custom_ids(message)[0], user="bob")
    await discord_fake.wait_until(lambda: click.ack_type is not None, what="ack")
    assert click.ack_type == 4
    assert discord_fake.messages[click.original_id]["flags"] & 64
    assert "not yours" in discord_fake.messages[click.original_id]["content"]
    final = await discord_fake.wait_until(lambda: discord_fake.finished(channel), 20, what="reply")
    assert final["content"].endswith("chunk39")  # bob's click stopped nothing
    regen = await discord_fake.click(final["id"], discord_fake.custom_ids(final)[0], user="bob")
    await discord_fake.wait_until(
        lambda: "not yours" in str(ephemeral_texts(discord_fake, regen.token))
    )
    assert discord_fake.messages[regen.original_id]["flags"] & 64


async def test_regenerate_posts_a_new_answer_stored_as_a_sibling(
    discord_fake: FakeDiscord, llm_fake: LLMFake, bot: Running
) -> None:
    channel = discord_fake.channel_ids[2]
    llm_fake.queue(
        "workers", workers_stream(["First answer."]), workers_stream(["Second ", "answer."])
    )
    await discord_fake.slash("chat", {"prompt": "Give me an answer"}, channel=channel)
    first = await discord_fake.wait_until(lambda: discord_fake.finished(channel), what="reply")
    regen_id = discord_fake.custom_ids(first)[0]
    await discord_fake.click(first["id"], regen_id, user="alice")
    thread = first["id"]
    second = await discord_fake.wait_until(
        lambda: discord_fake.finished(thread), what="regenerated"
    )
    assert second["content"] == "Second answer."
    old = await bot.app.store.get_message(int(regen_id.rsplit(":", 1)[1]))
    new = await bot.app.store.get_message(int(discord_fake.custom_ids(second)[0].rsplit(":", 1)[1]))
    assert old is not None and new is not None and new.id != old.id
    assert new.parent_id == old.parent_id
    sent = llm_fake.calls_to("workers")[-1].body["messages"]
    assert [m["content"] for m in sent if m["role"] != "system"] == ["Give me an answer"]


async def test_buttons_work_after_a_restart_and_expired_ones_say_so(
    discord_fake: FakeDiscord, llm_fake: LLMFake, tmp_path: object
) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path}/parley.db"
    first = await start_bot(discord_fake, llm_fake, database_url=db)
    channel = discord_fake.channel_ids[3]
    llm_fake.queue("workers", workers_stream(["Done."]))
    await discord_fake.slash("chat", {"prompt": "Quick one"}, channel=channel)
    final = await discord_fake.wait_until(lambda: discord_fake.finished(channel), what="reply")
    await first.close()
    puts = discord_fake.command_puts

    second = await start_bot(discord_fake, llm_fake, database_url=db)
    try:
        assert discord_fake.command_puts == puts  # unchanged definitions are not re-uploaded
        turn = discord_fake.custom_ids(final)[0].rsplit(":", 1)[1]
        # as a crash mid-stream leaves it: the message still shows Stop (and a stale button)
        discord_fake.set_buttons(final["id"], f"parley:stop:{turn}", "parley:regenerate:999999")
        stop = await discord_fake.click(final["id"], f"parley:stop:{turn}", user="alice")
        await discord_fake.wait_until(
            lambda: "finished" in str(ephemeral_texts(discord_fake, stop.token)),
            what="finished notice",
        )
        gone = await discord_fake.click(final["id"], "parley:regenerate:999999", user="alice")
        await discord_fake.wait_until(
            lambda: "expired" in str(ephemeral_texts(discord_fake, gone.token)),
            what="expired notice",
        )
        discord_fake.set_buttons(final["id"], f"parley:regenerate:{turn}")
        llm_fake.queue("workers", workers_stream(["Again."]))
        await discord_fake.click(final["id"], f"parley:regenerate:{turn}", user="alice")
        again = await discord_fake.wait_until(
            lambda: discord_fake.finished(final["id"]), what="regenerated after restart"
        )
        assert again["content"] == "Again."
    finally:
        await second.close()
