"""Command line: `python -m bot [run|ask|db|models|providers|tools]`.

Imports stay inside the commands so that `--help` answers at once.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="parley",
        description="Parley: an LLM chat and image bot for Discord and Slack.",
    )
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("run", help="run the bot (the default): platforms from settings, else console")
    ask = sub.add_parser("ask", help="stream one answer to stdout")
    ask.add_argument("prompt", help="what to ask")
    ask.add_argument("--model", "-m", help="a catalog name or provider:model-id")
    ask.add_argument("--system", "-s", help="a system prompt")
    ask.add_argument("--max-tokens", type=int, help="most tokens in the answer")
    ask.add_argument("--verbose", "-v", action="store_true", help="log to stderr")
    db = sub.add_parser("db", help="database maintenance")
    db.add_argument("action", choices=["upgrade", "current"])
    sub.add_parser("models", help="list the model catalog")
    sub.add_parser("providers", help="show which providers are configured")
    sub.add_parser("tools", help="connect the MCP servers and list their tools")
    return parser


def _fail(message: str, code: int = EXIT_CONFIG) -> int:
    print(f"parley: {message}", file=sys.stderr, flush=True)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from bot.config import ConfigurationError, load_settings

    try:
        settings = load_settings()
        command = args.command or "run"
        if command == "ask":
            return asyncio.run(_ask(settings, args))
        if command == "db":
            return asyncio.run(_db(settings, args.action))
        if command == "models":
            return _models(settings)
        if command == "providers":
            return _providers(settings)
        if command == "tools":
            return asyncio.run(_tools(settings))
        return asyncio.run(_run(settings))
    except ConfigurationError as exc:
        return _fail(f"config error: {exc}")
    except KeyboardInterrupt:
        return 130


async def _ask(settings: object, args: argparse.Namespace) -> int:
    from bot.app import build_catalog, build_router
    from bot.catalog import UnknownModel
    from bot.config import Settings
    from bot.llm.reasoning import no_answer
    from bot.llm.types import FinishReason, Message, ProviderError
    from bot.ops.logs import configure_logging

    assert isinstance(settings, Settings)
    level = "CRITICAL"
    if args.verbose:  # LOG_LEVEL=DEBUG makes -v more verbose still
        level = "DEBUG" if settings.log_level.upper() == "DEBUG" else "INFO"
    configure_logging(level, settings.log_format, settings.secret_values())
    catalog = build_catalog(settings)
    try:
        entry = catalog.resolve(args.model or settings.default_model)
    except UnknownModel as exc:
        return _fail(str(exc))
    router = build_router(settings, catalog)
    system = args.system if args.system is not None else settings.system_prompt
    messages = [Message("system", system)] if system else []
    messages.append(Message("user", args.prompt))
    out = sys.stdout
    wrote = False
    finish: FinishReason | None = None
    thinking: float | None = None  # when the model began to think, while it shows no answer
    reasoned = False
    tools: tuple[str, ...] = ()
    try:
        async for chunk in router.stream(entry, messages, max_tokens=args.max_tokens):
            if (chunk.reasoning or chunk.thinking) and not wrote and thinking is None:
                thinking, reasoned = time.monotonic(), True
                print("parley: thinking…", file=sys.stderr, flush=True)
            if chunk.text:
                if thinking is not None:
                    seconds = time.monotonic() - thinking
                    print(f"parley: thought for {seconds:.0f} s", file=sys.stderr, flush=True)
                    thinking = None
                out.write(chunk.text)
                out.flush()
                wrote = True
            finish = chunk.finish_reason or finish
            tools += tuple(call.name for call in chunk.tool_calls)
    except ProviderError as exc:
        if wrote:
            out.write("\n")
            out.flush()
        return _fail(f"error: {exc.message}", EXIT_FAILED)
    finally:
        await router.registry.aclose()
    if not wrote:
        cut = finish is FinishReason.LENGTH
        return _fail(no_answer(reasoned=reasoned, cut=cut, tools=tools), EXIT_FAILED)
    out.write("\n")
    out.flush()
    if finish is FinishReason.LENGTH:
        print("parley: note: the answer reached the token limit", file=sys.stderr)
    return EXIT_OK


async def _db(settings: object, action: str) -> int:
    from bot.app import open_store
    from bot.config import Settings

    assert isinstance(settings, Settings)
    store = await open_store(settings.database_url, migrate=action == "upgrade")
    try:
        revision = await store.current_revision()
        print(f"database at revision {revision or '(empty)'}")
    finally:
        await store.close()
    return EXIT_OK


def _models(settings: object) -> int:
    from bot.app import build_catalog
    from bot.config import Settings

    assert isinstance(settings, Settings)
    catalog = build_catalog(settings)
    default = catalog.resolve(settings.default_model).name
    rows = [("", "model", "provider", "model id", "can", "$ in / out per M tokens")]
    for entry in catalog:
        can = entry.capabilities
        marks = ", ".join(
            word
            for word, has in (
                ("vision", can.vision),
                ("tools", can.tools),
                ("reasoning", can.reasoning),
            )
            if has
        )
        price = (
            f"${entry.price.input_per_mtok} / ${entry.price.output_per_mtok}"
            if entry.price
            else "unpriced"
        )
        mark = "*" if entry.name == default else ""
        rows.append((mark, entry.name, entry.provider, entry.model_id, marks or "-", price))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
            + "  "
            + row[-1]
        )
    print("\n* the default (DEFAULT_MODEL). Prices from the catalog: bot/catalog/models.toml.")
    return EXIT_OK


def _providers(settings: object) -> int:
    from bot.config import Settings
    from bot.llm.registry import ProviderRegistry

    assert isinstance(settings, Settings)
    registry = ProviderRegistry.from_settings(settings)
    for status in registry.statuses:
        state = "ready" if status.configured else f"off ({status.reason})"
        print(f"{status.name:<14} {state:<40} {status.base_url}")
    asyncio.run(registry.aclose())
    return EXIT_OK


async def _tools(settings: object) -> int:
    """Each server's state, then its tools: offered, or why not (acts on the world)."""
    from bot.app import start_tools
    from bot.config import Settings

    assert isinstance(settings, Settings)
    servers = await start_tools(settings, wait=None)
    if servers is None:
        print("no MCP servers configured: add [[mcp_servers]] to the BOT_CONFIG file")
        return EXIT_OK
    try:
        for state in servers.servers.values():
            config = state.config
            where = config.url or " ".join([config.command or "", *config.args])
            reason = f": {state.reason}" if state.reason else ""
            print(f"{config.name} ({config.transport}, {where}) {state.status}{reason}")
            for tool in state.tools:
                mark = "needs approval (not offered yet)" if tool.acts else "offered"
                print(f"  {tool.label:<40} {mark:<34} {tool.description[:60]}")
    finally:
        await servers.aclose()
    failed = any(s.status != "connected" for s in servers.servers.values())
    return EXIT_FAILED if failed else EXIT_OK


async def _run(settings: object) -> int:
    from bot.app import App, serve
    from bot.config import Settings
    from bot.ops.logs import configure_logging

    assert isinstance(settings, Settings)
    platforms = settings.platforms()
    if not platforms:
        if not sys.stdin.isatty():
            return _fail(
                "no chat platform configured: set DISCORD_TOKEN, or SLACK_BOT_TOKEN with"
                " SLACK_SIGNING_SECRET or SLACK_APP_TOKEN; or run in a terminal for the console",
                EXIT_FAILED,
            )
        platforms = ["console"]
        # The console owns the terminal: only warnings and worse reach stderr.
        configure_logging("WARNING", settings.log_format, settings.secret_values())
    else:
        configure_logging(
            settings.log_level,
            settings.log_format,
            settings.secret_values(),
            libraries=settings.log_level_libraries,
        )
    app = await App.build(settings)
    try:
        await serve(app, platforms)
    finally:
        await app.close()
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
