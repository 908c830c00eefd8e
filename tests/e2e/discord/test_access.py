"""Discord's allow-lists hold on every interaction, through the real `python -m bot`: slash
commands, their autocomplete and every button (Stop, Regenerate, the image buttons, history
pages). A guild that DISCORD_ALLOWED_GUILDS leaves out gets "not enabled" and costs nothing, even
on a message whose buttons carry this guild's turn and quote ids."""

from __future__ import annotations

from pathlib import Path

from bot.commands.access import NOT_ALLOWED
from tests.e2e.discord.conftest import BotProcess, discord_env
from tests.e2e.discord.imaging import GENEROUS, image_ids, notice_of, quote
from tests.fakes.discord import FakeDiscord
from tests.fakes.images.process import image_env
from tests.fakes.images.server import ImageFake
from tests.fakes.llm_server import LLMFake


async def test_a_guild_left_out_of_the_allow_list_is_refused_on_every_interaction(
    tmp_path: Path,
) -> None:
    async with FakeDiscord(channels=1) as fake, LLMFake() as llm, ImageFake() as images:
        other = fake.add_guild("Elsewhere", channels=1)
        here, there = fake.channel_ids[0], other.channels[0]
        env = discord_env(fake, llm, tmp_path, DISCORD_ALLOWED_GUILDS=fake.guild.id)
        env |= image_env(images, ("openai",)) | GENEROUS
        bot = await BotProcess(fake, env, tmp_path).start()
        try:
            await fake.slash("chat", {"prompt": "hello from the allowed guild"}, channel=here)
            reply = await fake.wait_until(lambda: fake.finished(here), 20, what="the reply")
            regenerate = next(c for c in fake.custom_ids(reply) if ":regenerate:" in c)
            turn = regenerate.rsplit(":", 1)[1]
            _, offer = await quote(fake, here, "a fox in the snow")
            generate = image_ids(fake, offer, "c")[0]
            llm_calls, image_calls = len(llm.calls), len(images.calls)

            # A bot message in the left-out guild showing this guild's ids, as a message posted
            # before the allow-list narrowed (or a forged one) would: every click is refused.
            message = fake.store_message(
                there, fake.bot_user, {"content": "an old reply"}, dispatch=False
            )
            buttons = (regenerate, f"parley:stop:{turn}", generate, "parley:history:2")
            fake.set_buttons(message["id"], *buttons)
            clicks = [await fake.click(message["id"], c, user="alice") for c in buttons]
            for inter in clicks:
                said = await fake.wait_until(lambda i=inter: notice_of(fake, i), 10, what="refusal")
                assert said == NOT_ALLOWED
                assert inter.ack_type == 4  # answered at once, never deferred to do work

            commands = [
                await fake.slash("chat", {"prompt": "hello from elsewhere"}, channel=there),
                await fake.slash("image", {"prompt": "an owl"}, channel=there),
                await fake.slash("history", {}, channel=there),
                await fake.slash("model", {"name": "llama"}, channel=there),
            ]
            for inter in commands:
                said = await fake.wait_until(lambda i=inter: notice_of(fake, i), 10, what="refusal")
                assert said == NOT_ALLOWED

            typed = {"prompt": "", "model": "llama"}
            refused = await fake.slash("chat", typed, channel=there, focused="model")
            offered = await fake.slash("chat", typed, channel=here, focused="model")
            await fake.wait_until(lambda: offered.choices is not None, 10, what="autocomplete")
            await fake.wait_until(lambda: refused.choices is not None, 10, what="autocomplete")
            assert offered.choices and refused.choices == []

            assert len(llm.calls) == llm_calls  # no Regenerate, no /chat
            assert len(images.calls) == image_calls == 0  # no Generate
            assert fake.bot_messages(there) == [message]  # nothing posted in the other guild
            rows = bot.rows("SELECT status FROM image_jobs")
            assert [r["status"] for r in rows] == ["quoted"]

            # The same Regenerate in the allowed guild still works: the gate is the allow-list.
            await fake.click(reply["id"], regenerate, user="alice")
            await fake.wait_until(lambda: len(llm.calls) > llm_calls, 20, what="regenerate")
        finally:
            await bot.stop()
        assert "Traceback" not in bot.logs(), bot.logs()[-3000:]
