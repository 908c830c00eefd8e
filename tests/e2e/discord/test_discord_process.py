"""`python -m bot` with DISCORD_TOKEN set: the whole wiring, from settings to streamed replies."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.discord.conftest import run_discord_bot
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord.payloads import text_of
from tests.fakes.llm_server import LLMFake, workers_stream


async def test_chat_streams_into_a_thread_continues_there_and_buttons_survive_a_restart(
    discord_fake: FakeDiscord, llm_fake: LLMFake, tmp_path: Path
) -> None:
    channel = discord_fake.channel_ids[0]
    pieces = ["Streams ", "arrive ", "piece ", "by ", "piece."]
    llm_fake.queue("workers", workers_stream(pieces, delay=0.1))
    async with run_discord_bot(discord_fake, llm_fake, tmp_path) as logs:
        assert discord_fake.command_puts == 1  # first start: the commands are uploaded
        inter = await discord_fake.slash("chat", {"prompt": "How do streams arrive?"})
        final = await discord_fake.wait_until(lambda: discord_fake.finished(channel), 20)
        assert inter.ack_type == 4 and inter.acked_at - inter.created < 3.0  # the echo
        assert text_of(final) == "Streams arrive piece by piece."
        assert discord_fake.channels[final["id"]]["name"] == "How do streams arrive?"
        # streamed through the /chat's webhook, none of it with the bot token
        edits = [
            c for c in discord_fake.calls_to("followup.edit") if c.params["message"] == final["id"]
        ]
        assert len(edits) >= 2 and not discord_fake.rate_limited
        assert [c.params["token"] for c in edits] == [inter.token] * len(edits)
        assert not [
            c for c in discord_fake.calls_to("message.edit") if c.params["message"] == final["id"]
        ]

        llm_fake.queue("workers", workers_stream(["Yes, ", "in order."]))
        await discord_fake.say("In order?", channel=final["id"])
        second = await discord_fake.wait_until(lambda: discord_fake.finished(final["id"]), 20)
        assert text_of(second) == "Yes, in order."
        sent = llm_fake.calls_to("workers")[-1].body["messages"]
        assert [m["content"] for m in sent if m["role"] != "system"] == [
            "How do streams arrive?",
            "Streams arrive piece by piece.",
            "In order?",
        ]
        assert "Traceback" not in logs()

    turn = discord_fake.custom_ids(final)[0].rsplit(":", 1)[1]
    discord_fake.set_buttons(final["id"], f"parley:stop:{turn}")  # as a crash would leave it
    async with run_discord_bot(discord_fake, llm_fake, tmp_path) as logs:
        assert discord_fake.command_puts == 1  # unchanged: not uploaded again
        click = await discord_fake.click(final["id"], f"parley:stop:{turn}", user="alice")

        def notice() -> str | None:
            original = click.original_id and discord_fake.messages.get(click.original_id)
            return original and text_of(original)

        text = await discord_fake.wait_until(notice, 20, what="the stop notice")
        assert "already finished" in text
        assert discord_fake.messages[click.original_id]["flags"] & 64

        # a button whose turn is not stored (any more) says so
        discord_fake.set_buttons(final["id"], "parley:regenerate:999999")
        gone = await discord_fake.click(final["id"], "parley:regenerate:999999", user="alice")
        await discord_fake.wait_until(
            lambda: "That reply no longer exists." in str(_texts(discord_fake, gone.original_id)),
            20,
        )

        # Regenerate pressed on a message posted by the previous process
        discord_fake.set_buttons(final["id"], f"parley:regenerate:{turn}")
        llm_fake.queue("workers", workers_stream(["Again, ", "after a restart."]))
        await discord_fake.click(final["id"], f"parley:regenerate:{turn}", user="alice")
        again = await discord_fake.wait_until(
            lambda: (m := discord_fake.finished(final["id"])) and m["id"] != second["id"] and m,
            20,
            what="the regenerated answer",
        )
        assert text_of(again) == "Again, after a restart."
        sent = llm_fake.calls_to("workers")[-1].body["messages"]
        assert [m["content"] for m in sent if m["role"] != "system"] == ["How do streams arrive?"]
        assert "Traceback" not in logs()


def _texts(fake: FakeDiscord, message_id: str | None) -> str:
    return str(fake.messages.get(message_id or "", {}).get("content", ""))
