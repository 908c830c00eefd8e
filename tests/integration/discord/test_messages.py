"""Mentions, replies, DMs, access control, /model and autocomplete."""

from __future__ import annotations

from tests.fakes.discord import FakeDiscord
from tests.fakes.discord.payloads import text_of
from tests.fakes.llm_server import LLMFake, workers_stream
from tests.integration.discord.conftest import Running, ephemeral_texts, start_bot


async def test_a_mention_answers_in_a_new_thread_and_a_reply_continues_that_conversation(
    discord_fake: FakeDiscord, llm_fake: LLMFake, bot: Running
) -> None:
    channel = discord_fake.channel_ids[0]
    llm_fake.queue("workers", workers_stream(["Paris."]), workers_stream(["About 2.1 million."]))
    await discord_fake.say("What is the capital of France?", channel=channel, mention=True)
    first = await discord_fake.wait_until(lambda: discord_fake.finished(channel), what="reply")
    assert text_of(first) == "Paris."
    assert first["message_reference"]["message_id"]  # a reply to the user's message
    assert discord_fake.channels[first["id"]]["name"] == "What is the capital of France?"

    await discord_fake.say("And its population?", channel=channel, reply_to=first["id"])
    await discord_fake.wait_until(lambda: len(llm_fake.calls_to("workers")) == 2, what="2nd call")
    second = await discord_fake.wait_until(
        lambda: (m := discord_fake.finished(channel)) and m["id"] != first["id"] and m,
        what="reply 2",
    )
    assert text_of(second) == "About 2.1 million."
    sent = [
        text_of(m)
        for m in llm_fake.calls_to("workers")[-1].body["messages"]
        if m["role"] != "system"
    ]
    assert sent == ["What is the capital of France?", "Paris.", "And its population?"]


async def test_plain_messages_without_a_mention_are_ignored(
    discord_fake: FakeDiscord, llm_fake: LLMFake, bot: Running
) -> None:
    await discord_fake.say("just chatting", channel=discord_fake.channel_ids[1])
    await discord_fake.say("<@123> not the bot", channel=discord_fake.channel_ids[1])
    await discord_fake.wait_until(lambda: True)
    import asyncio

    await asyncio.sleep(0.3)
    assert llm_fake.calls == [] and discord_fake.bot_messages(discord_fake.channel_ids[1]) == []


async def test_dms_are_answered_only_when_allowed(
    discord_fake: FakeDiscord, llm_fake: LLMFake
) -> None:
    dm = discord_fake.dm_with(discord_fake.users["alice"]["id"])["id"]
    off = await start_bot(discord_fake, llm_fake)
    try:
        await discord_fake.say("hello in private", channel=dm)
        import asyncio

        await asyncio.sleep(0.3)
        assert discord_fake.bot_messages(dm) == []
    finally:
        await off.close()
    on = await start_bot(discord_fake, llm_fake, discord_allow_dms=True)
    try:
        llm_fake.queue("workers", workers_stream(["Hi in private."]))
        await discord_fake.say("hello again", channel=dm)
        final = await discord_fake.wait_until(lambda: discord_fake.finished(dm), what="dm reply")
        assert text_of(final) == "Hi in private."
    finally:
        await on.close()


async def test_allow_lists_refuse_other_channels_and_users(
    discord_fake: FakeDiscord, llm_fake: LLMFake
) -> None:
    allowed = discord_fake.channel_ids[0]
    running = await start_bot(
        discord_fake, llm_fake, discord_allowed_channels=allowed, discord_allowed_roles="member"
    )
    try:
        refused = await discord_fake.slash(
            "chat", {"prompt": "hi"}, channel=discord_fake.channel_ids[5]
        )
        await discord_fake.wait_until(lambda: refused.ack_type is not None)
        assert (
            refused.ack_type == 4
            and "isn't enabled" in ephemeral_texts(discord_fake, refused.token)[0]
        )
        admin = await discord_fake.slash("chat", {"prompt": "hi"}, channel=allowed, user="carol")
        await discord_fake.wait_until(lambda: admin.ack_type is not None)
        assert admin.ack_type == 4  # carol has no "member" role
        llm_fake.queue("workers", workers_stream(["Allowed."]))
        ok = await discord_fake.slash("chat", {"prompt": "hi"}, channel=allowed, user="alice")
        final = await discord_fake.wait_until(lambda: discord_fake.finished(allowed), what="reply")
        assert ok.ack_type == 4 and text_of(final) == "Allowed."  # answered with its echo
        await discord_fake.say("hi", channel=discord_fake.channel_ids[5], mention=True)
    finally:
        await running.close()
    assert len(llm_fake.calls) == 1


async def test_model_autocomplete_show_and_set_with_an_admin_role(
    discord_fake: FakeDiscord, llm_fake: LLMFake
) -> None:
    running = await start_bot(discord_fake, llm_fake, discord_admin_role="admin")
    channel = discord_fake.channel_ids[2]
    try:
        ac = await discord_fake.slash("model", {"name": "gpt"}, channel=channel, focused="name")
        await discord_fake.wait_until(lambda: ac.choices is not None, what="autocomplete")
        assert ac.ack_type == 8 and 0 < len(ac.choices) <= 25
        assert all("gpt" in c["name"].lower() for c in ac.choices)
        assert "gpt-4o-mini" in [c["value"] for c in ac.choices]

        denied = await discord_fake.slash(
            "model", {"name": "gpt-4o-mini"}, channel=channel, user="alice"
        )
        await discord_fake.wait_until(  # the core's refusal: only admins set a channel's model
            lambda: "Only admins" in str(ephemeral_texts(discord_fake, denied.token))
        )

        done = await discord_fake.slash(
            "model", {"name": "gpt-4o-mini"}, channel=channel, user="carol"
        )
        await discord_fake.wait_until(
            lambda: "now" in str(ephemeral_texts(discord_fake, done.token))
        )
        shown = await discord_fake.slash("model", {}, channel=channel, user="alice")
        await discord_fake.wait_until(
            lambda: "gpt-4o-mini" in str(ephemeral_texts(discord_fake, shown.token))
        )

        # a new thread in that channel inherits the channel's model
        from tests.fakes.llm_server import openai_stream

        llm_fake.queue("openai", openai_stream(["From GPT."]))
        await discord_fake.slash("chat", {"prompt": "hi"}, channel=channel)
        final = await discord_fake.wait_until(lambda: discord_fake.finished(channel), what="reply")
        assert text_of(final) == "From GPT." and llm_fake.calls_to("openai")
    finally:
        await running.close()


async def test_an_archived_threads_plain_messages_get_no_answer_and_a_mention_is_told_why(
    discord_fake: FakeDiscord, llm_fake: LLMFake, bot: Running
) -> None:
    """One rule on both platforms (bot.commands.chat.ChatCommands.addressed)."""
    import asyncio

    from bot.domain import ConversationKey
    from bot.engine.chat import REFUSAL_ARCHIVED

    fake, store = discord_fake, bot.app.store
    parent = fake.channel_ids[2]
    thread = await fake.create_thread(str(10**17 + 7), parent, {"name": "an old topic"})
    key = ConversationKey("discord", fake.guild.id, parent, thread["id"])
    conversation = await store.ensure_conversation(key, fake.users["alice"]["id"], "an old topic")
    await store.set_archived(conversation.id, True)

    await fake.say("anyone here?", channel=thread["id"])
    await asyncio.sleep(0.5)
    assert fake.bot_messages(thread["id"]) == [] and llm_fake.calls == []

    await fake.say("are you there?", channel=thread["id"], mention=True)
    said = await fake.wait_until(lambda: fake.bot_messages(thread["id"]), 10, what="a refusal")
    assert [text_of(m) for m in said] == [REFUSAL_ARCHIVED] and llm_fake.calls == []
