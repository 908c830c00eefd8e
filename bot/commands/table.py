"""Every command Parley offers, once: its options and the core handler it runs.

Discord builds its slash commands from this table, Slack and the console parse typed text by it
(bot.commands.spec); each surface renders the Reply. A command with no `run` (/chat, /image) is
run by the surface itself, from the options parsed here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from bot.commands.conversations import MAX_PAGE, ConversationCommands
from bot.commands.models import ModelCommands
from bot.commands.personas import PersonaCommands, PersonaEdit
from bot.commands.reply import Reply
from bot.commands.spec import Args, Command, Here, Option, Run
from bot.commands.usage import UsageCommands
from bot.domain import Attachment, Caller, ConversationKey
from bot.engine.personas import PersonaSpec
from bot.errors import UserError
from bot.images.catalog import IMAGE_PROVIDERS, SIZES, TIERS
from bot.images.flow import IMAGES_OFF
from bot.images.views import history_text

if TYPE_CHECKING:
    from bot.app import App

GROUPS = {"persona": "Personas: a name, a system prompt and model settings"}
MAX_ID = 2**53  # conversation ids: Discord's integer options are JSON numbers
PROMPT_MAX = 6000  # a Discord string option's limit; the core takes up to 8,000 for a persona

NAME = Option("name", "1-32 letters, digits, - or _", required=True, high=32, first=True)
PERSONA = Option(
    "name", "A persona of this {tenant}", required=True, complete="persona", first=True
)
SETTINGS = (
    Option("model", "A model from the catalog (default: the bot's default)", complete="model",
           clears=True),
    Option("temperature", "0 to 2", float, clears=True),  # ranges: the core's (with the model's)
    Option("top_p", "0 to 1", float, clears=True),
    Option("max_tokens", "Longest answer in tokens (up to the model's limit)", int, low=1,
           high=999_999_999, clears=True),
    Option("tools", "Allowed tools, comma separated (e.g. generate_image), or none", tuple),
    Option("show_reasoning", "Show the model's reasoning, folded, under answers",
           choices=("off", "summary"), clears=True),
)  # fmt: skip
SYSTEM_PROMPT = Option(
    "system_prompt", "How the persona behaves (up to 6,000 characters)", high=PROMPT_MAX,
    text=True, alias="prompt",
)  # fmt: skip
CONVERSATION = Option(
    "conversation", "An id from /history (default: the conversation of this thread)", int,
    low=1, high=MAX_ID, first=True,
)  # fmt: skip
CHAT = Command(
    "chat",
    "Ask Parley; the answer opens a thread",
    (
        Option("prompt", "What to ask", required=True, high=6000, text=True),
        Option("model", "A model from the catalog (default: this channel's)", complete="model"),
        Option("persona", "A persona of this server (see /persona list)", complete="persona"),
        Option(
            "file",
            "A file to read with it: text, code, PDF, an image or a voice note",
            Attachment,
            only="discord",
        ),
    ),
)
IMAGE = Command(
    "image",
    "Get a price for an image; nothing is charged yet",
    (
        Option("prompt", "What to draw", required=True, high=4000, text=True),
        Option("quality", "Quality tier (default: chosen from the prompt)", choices=TIERS),
        Option("size", "Image size", choices=SIZES),
        Option("provider", "Prefer this provider", choices=IMAGE_PROVIDERS),
        Option("negative", "What to leave out", high=4000),
        Option("seed", "Seed, for repeatable images", int, low=0, high=2**32 - 1),
        Option("steps", "Sampling steps (models that take them)", int, low=1, high=100),
    ),
)


def command_table(app: App) -> dict[str, Command]:
    """The commands with a core handler, by name, bound to `app`'s services."""
    personas = PersonaCommands(app.personas)
    conversations = ConversationCommands(app.conversations)
    usage = UsageCommands(app.usage)
    models = ModelCommands(app.engine)

    async def edit(here: Here, args: Args) -> Reply:
        change = PersonaEdit(**{k: v for k, v in args.items() if k != "name"})
        return await personas.edit(here.caller, here.place, args["name"], change)

    async def use(here: Here, args: Args) -> Reply:
        name, inside = args.get("name"), here.in_conversation
        return await personas.use(here.caller, here.place, name, in_conversation=inside)

    async def model(here: Here, args: Args) -> Reply:
        dm = here.in_conversation and not here.place.thread
        if "name" not in args:
            return await models.show(here.caller, here.place, in_conversation=dm)
        return await models.set(here.caller, here.place, args["name"], in_conversation=dm)

    async def images(here: Here, args: Args) -> Reply:
        if app.images is None:
            raise UserError(IMAGES_OFF, code="unavailable")
        return Reply.say(history_text(await app.images.recent(here.place, here.caller.user_id)))

    def by_id(run: Callable[[Caller, ConversationKey, int | None], Awaitable[Reply]]) -> Run:
        return lambda here, args: run(here.caller, here.place, args.get("conversation"))

    table = (
        Command(
            "persona create", "Create a persona (admins)",
            (NAME, replace(SYSTEM_PROMPT, required=True), *SETTINGS),
            lambda here, a: personas.create(here.caller, here.place, PersonaSpec(**a)),
        ),
        Command(
            "persona edit", "Change a persona; options left out keep their value",
            (PERSONA, SYSTEM_PROMPT, *SETTINGS), edit,
        ),
        Command(
            "persona list", "This {tenant}'s personas", (),
            lambda here, a: personas.list(here.caller, here.place),
        ),
        Command(
            "persona delete", "Delete a persona (admins)", (PERSONA,),
            lambda here, a: personas.delete(here.caller, here.place, a["name"]),
        ),
        Command(
            "persona use", "Use a persona in this conversation from now on",
            (replace(PERSONA, required=False, clears=True,
                     help="A persona; empty or none: back to the channel's default"),),
            use,
        ),
        Command(
            "persona default", "Set this channel's default persona (admins)",
            (replace(PERSONA, required=False, clears=True,
                     help="A persona; none clears the channel's default"),),
            lambda here, a: personas.default(here.caller, here.place, a.get("name")),
        ),
        Command(
            "history", "Your conversations in this {tenant}, newest first",
            (Option("page", "Page number (default 1)", int, low=1, high=MAX_PAGE, first=True),),
            lambda here, a: conversations.history(here.caller, here.place, a.get("page", 1)),
        ),
        Command(
            "search", "Search your conversations in this {tenant}",
            (Option("words", "Words to find (every one of them)", required=True, high=200,
                    text=True),),
            lambda here, a: conversations.search(here.caller, here.place, a["words"]),
        ),
        Command(
            "archive", "Archive a conversation: I stop answering in it",
            (CONVERSATION, Option("close_thread", "Also archive the Discord thread", bool,
                                  only="discord")),
            by_id(conversations.archive),
        ),
        Command(
            "export", "Download a conversation as a Markdown file", (CONVERSATION,),
            by_id(conversations.export),
        ),
        Command(
            "new", "Start a fresh context in a conversation", (CONVERSATION,),
            by_id(conversations.new),
        ),
        Command(
            "usage", "Tokens and spend today and this month",
            (Option("scope", "me (default), or the whole {tenant} (admins)",
                    choices=("me", "{tenant}"), first=True),),
            lambda here, a: usage.usage(
                here.caller, here.place, tenant=a.get("scope", "me") != "me"
            ),
        ),
        Command(
            "model", "Show or set the model for this thread or channel",
            (Option("name", "A model from the catalog; none: back to the default; empty: show it",
                    complete="model", clears=True, first=True),),
            model,
        ),
        Command("images", "Your recent images: prompt, provider, cost, date", (), images),
    )  # fmt: skip
    return {command.name: command for command in table}
