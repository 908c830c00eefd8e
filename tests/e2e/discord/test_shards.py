"""Discord sharding, through real `python -m bot` processes against the fake Discord, whose
gateway shards as Discord does (each guild's events go only to the sessions of its shard,
`(guild_id >> 22) % count`): two processes with a shard each, or one process with both, answer
every mention once, from the shard that owns its guild."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.discord.conftest import BotProcess, discord_env
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord.gateway import shard_of
from tests.fakes.llm_server import LLMFake, workers_stream


def channels_by_shard(fake: FakeDiscord, count: int) -> dict[int, str]:
    """A channel in a guild of each shard (guilds are added until every shard has one)."""
    found: dict[int, str] = {}
    guild = fake.guild
    while True:
        found.setdefault(shard_of(guild.id, count), guild.channels[0])
        if len(found) == count:
            return found
        guild = fake.add_guild(f"server-{len(fake.other_guilds)}")


async def mention_in_each(fake: FakeDiscord, llm: LLMFake, channels: dict[int, str]) -> None:
    for shard, channel in sorted(channels.items()):
        llm.queue("workers", workers_stream([f"Hello from shard {shard}."]))
        await fake.say(f"hi from shard {shard}", channel=channel, mention=True)
        reply = await fake.wait_until(lambda c=channel: fake.finished(c), 20, what="the reply")
        assert "Hello from shard" in str(reply)
    assert len(llm.calls_to("workers")) == len(channels)  # one answer each: no shard twice
    for channel in channels.values():
        assert len([m for m in fake.bot_messages(channel) if fake.custom_ids(m)]) == 1


async def test_two_processes_with_a_shard_each_answer_each_guild_once(
    discord_fake: FakeDiscord, llm_fake: LLMFake, tmp_path: Path
) -> None:
    channels = channels_by_shard(discord_fake, 2)
    bots = []
    try:
        for shard in (0, 1):
            env = discord_env(
                discord_fake,
                llm_fake,
                tmp_path,
                DISCORD_SHARD_COUNT="2",
                DISCORD_SHARD_IDS=str(shard),
            )
            bots.append(await BotProcess(discord_fake, env, tmp_path).start())
        await discord_fake.wait_until(lambda: len(discord_fake.gateway.shards) == 2, 20)
        assert sorted(discord_fake.gateway.shards) == [(0, 2), (1, 2)]
        identifies = [i["shard"] for i in discord_fake.gateway.identifies]
        assert sorted(identifies) == [[0, 2], [1, 2]]
        await mention_in_each(discord_fake, llm_fake, channels)
        assert all("discord shards" in bot.logs() for bot in bots)
    finally:
        for bot in bots:
            await bot.stop()


async def test_one_process_runs_every_shard_when_no_ids_are_set(
    discord_fake: FakeDiscord, llm_fake: LLMFake, tmp_path: Path
) -> None:
    channels = channels_by_shard(discord_fake, 2)
    env = discord_env(discord_fake, llm_fake, tmp_path, DISCORD_SHARD_COUNT="2")
    bot = await BotProcess(discord_fake, env, tmp_path).start()
    try:
        await discord_fake.wait_until(lambda: len(discord_fake.gateway.shards) == 2, 20)
        assert sorted(discord_fake.gateway.shards) == [(0, 2), (1, 2)]
        await mention_in_each(discord_fake, llm_fake, channels)
    finally:
        await bot.stop()
