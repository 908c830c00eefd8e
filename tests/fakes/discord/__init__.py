"""A strict fake of the Discord REST API and gateway that the real discord.py client connects to.

    async with FakeDiscord() as fake:                 # or the `discord_fake` fixture
        client: REST base = fake.api_base, gateway = fake.gateway_url, token = fake.token
        await fake.wait_ready()
        await fake.slash("chat", {"prompt": "hi"}, user="alice")
        await fake.wait_until(lambda: fake.final_message(channel) is not None)

Read server.py for the routes and the injection helpers, validate.py for what it rejects.
"""

from tests.fakes.discord.records import Call, Interaction
from tests.fakes.discord.server import FakeDiscord, discord_fake

__all__ = ["Call", "FakeDiscord", "Interaction", "discord_fake"]
