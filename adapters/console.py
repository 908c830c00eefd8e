"""A terminal surface: the embedded default for trying Parley without a chat platform.

Replies stream onto the terminal as appended text. The core's commands (bot.commands.table:
/model, /history, /archive, /export, /persona ..., /usage, /images, /image) are typed as on Slack,
`<first> key:value ... <text>`; the console's own are /new (a fresh conversation), /open <id>,
/attach <path> (a file for the next message), /models, /generate [n] and /cancel
(adapters/console_images.py), /help and /quit. Ctrl-C stops a
reply that is streaming; at the prompt it quits. The console's user is the admin of its own
tenant ("console:local").
"""

from __future__ import annotations

import asyncio
import getpass
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, TextIO

from adapters.console_images import ConsoleImages, ConsoleImageSurface
from bot.app import App
from bot.catalog import ModelEntry
from bot.commands import Reply
from bot.commands.controls import ReplyControls
from bot.commands.reply import render_line
from bot.commands.spec import Here, find, parse
from bot.commands.table import IMAGE, command_table
from bot.domain import Attachment, Caller, ChatOptions, ChatRequest, ConversationKey
from bot.errors import UserError
from bot.images.engine import ImageRequest
from bot.markup import PLAIN
from bot.ports import Control, MessageRef, PlatformLimits, SurfaceError
from bot.store import tenant_id_for

LIMITS = PlatformLimits(
    max_chars=1_000_000,
    min_edit_interval=0.0,
    edits_cheap=True,
    progress_marker="",
    append_only=True,
)
PLATFORM = "console"
DIM, UNDIM, ERASE = "\x1b[2m", "\x1b[0m", "\x1b[K"
HELP = (
    "Type a message to chat; Ctrl-C stops a reply. /new starts a fresh conversation, /open <id>"
    " resumes one, /attach <path> sends a file with your next message, /models lists the"
    " models, /generate [n] confirms choice n of the last image"
    " quote (nothing is charged before), /cancel drops it, /quit leaves. Options go as"
    ' key:value (quote values with spaces: negative:"blurry, text"). And:'
)


class ConsoleSurface:
    """Appends each edit's new text to the terminal; edits never rewrite what was printed."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._printed: dict[str, str] = {}
        self._next = 0
        self.stop_ref: str | None = None
        self.approve_ref: str | None = None
        """The turn whose tool call waits for /approve or /deny."""
        self._status_width = 0

    @property
    def limits(self) -> PlatformLimits:
        return LIMITS

    def _track(self, controls: tuple[Control, ...]) -> None:
        self.stop_ref = next((c.ref for c in controls if c.action == "stop"), None)
        asking = next((c.ref for c in controls if c.action == "approve"), None)
        if asking is not None and self.approve_ref is None:
            self._out.write(f" {DIM}(/approve or /deny){UNDIM}")
        self.approve_ref = asking

    async def post(
        self, text: str, controls: tuple[Control, ...] = (), *, final: bool = False
    ) -> MessageRef:
        self._next += 1
        ref = MessageRef(str(self._next))
        self._printed[ref.id] = ""
        await self.edit(ref, text, controls)
        return ref

    async def edit(
        self, ref: MessageRef, text: str, controls: tuple[Control, ...] = (), *, final: bool = False
    ) -> None:
        # Append-only (LIMITS): while streaming the core sends only text that will not change
        # (not the closer of an open code fence, which a terminal would print for good).
        printed = self._printed.get(ref.id, "")
        common = len(os.path.commonprefix([printed, text]))  # noqa: RUF071 (characters)
        # A terminal cannot take back what it printed; new text after the common part is shown.
        self._out.write(text[common:] if common == len(printed) else "\n" + text[common:])
        self._out.flush()
        self._printed[ref.id] = text
        self._track(controls)

    async def delete(self, ref: MessageRef) -> None:
        raise SurfaceError("a terminal cannot take back what it printed")  # can_delete is False

    async def notify(self, text: str) -> None:
        self._out.write(f"\n[{text}]\n")
        self._out.flush()

    def fold(self, label: str, text: str) -> str:
        return f"{DIM}{label}: {text}{UNDIM}"

    async def status(self, line: str, controls: tuple[Control, ...] = ()) -> None:
        """Dim text after the prompt ("(thinking… 3 s)"), rewritten in place and erased before
        the answer prints: back over the last one, then erase to the end of the line."""
        shown = f"({line})" if line else ""
        self._out.write(
            "\b" * self._status_width + ERASE + (f"{DIM}{shown}{UNDIM}" if line else "")
        )
        self._out.flush()
        self._status_width = len(shown)


def create(app: App) -> Console:
    return Console(app)


class Console:
    name = "console"

    def __init__(self, app: App, out: TextIO = sys.stdout) -> None:
        self.app = app
        self.out = out
        self.user = getpass.getuser() or "you"
        self.key = ConversationKey("console", "local", self.user, "main")
        self._reply: asyncio.Task[object] | None = None
        self._surface: ConsoleSurface | None = None
        self._lines: asyncio.Queue[str | None] = asyncio.Queue()
        self._typed: deque[str | None] = deque()
        """Lines typed while a reply streamed, for the next prompt."""
        self._quit = asyncio.Event()
        self._files: list[Attachment] = []
        """What /attach put aside for the next message."""
        self.images = ConsoleImages(app.images, ConsoleImageSurface(out, Path.cwd()))
        self.table = command_table(app)

    async def resume_latest(self) -> None:
        latest = await self.app.store.list_conversations(
            platform="console", tenant_id=tenant_id_for(self.key), user_id=self.user, limit=1
        )
        if latest:
            self.key = ConversationKey("console", "local", self.user, latest[0].thread_id)

    def _print(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def _on_sigint(self) -> None:
        if self._reply is not None and not self._reply.done() and self._surface is not None:
            ref = self._surface.stop_ref
            if ref is not None:
                self.app.engine.stop(int(ref), self.user)
                return
        self._quit.set()

    def _on_stdin(self) -> None:
        line = sys.stdin.readline()
        self._lines.put_nowait(line if line else None)

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, self._on_sigint)
        loop.add_reader(sys.stdin.fileno(), self._on_stdin)
        stopper = asyncio.ensure_future(stop.wait())
        stopper.add_done_callback(lambda _: self._quit.set())
        try:
            await self.resume_latest()
            model = await self.app.engine.current_model(self.key)
            self._print(f"Parley console — model {model.name}. /help for commands.")
            await self._warn_about_setup(model)
            while not self._quit.is_set():
                self.out.write("you> ")
                self.out.flush()
                line = await self._next_line()
                if line is None:
                    break
                line = line.strip()
                if not line:
                    continue
                if line.startswith("/"):
                    if not await self._command(line):
                        break
                    continue
                await self._chat(line)
        finally:
            stopper.cancel()
            loop.remove_reader(sys.stdin.fileno())
            loop.remove_signal_handler(signal.SIGINT)
        self._print("\nbye")

    async def _warn_about_setup(self, model: ModelEntry) -> None:
        missing = self.app.router.unconfigured(model)
        if missing is not None:
            self._print(f"{missing} Or pick another model with /model.")
        if any(turn.conversation.platform == "console" for turn in self.app.interrupted):
            self._print("(your last reply was cut off when Parley stopped)")

    async def _next_line(self) -> str | None:
        if self._typed:
            return self._typed.popleft()
        getter = asyncio.ensure_future(self._lines.get())
        quitter = asyncio.ensure_future(self._quit.wait())
        done, pending = await asyncio.wait({getter, quitter}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        return getter.result() if getter in done else None

    async def _chat(self, text: str) -> None:
        surface = ConsoleSurface(self.out)
        self._surface = surface
        self.out.write("parley> ")
        self.out.flush()
        files, self._files = tuple(self._files), []
        request = ChatRequest(self.key, self.user, text, ChatOptions(), self.user, files)
        images = self.images.surface if self.app.images is not None else None
        self._reply = asyncio.ensure_future(self.app.engine.handle(request, surface, images=images))
        try:
            await self._answering(self._reply, surface)
        finally:
            self._reply = None
        self.out.write("\n")
        self.out.flush()

    async def _answering(self, reply: asyncio.Future[Any], surface: ConsoleSurface) -> None:
        """Wait for the reply; meanwhile /approve or /deny answers a tool call it waits on, and
        other lines wait for the next prompt."""
        while True:
            getter = asyncio.ensure_future(self._lines.get())
            await asyncio.wait({reply, getter}, return_when=asyncio.FIRST_COMPLETED)
            if not getter.done():
                getter.cancel()
                await reply
                return
            line = getter.result()
            word = (line or "").strip()
            if surface.approve_ref is not None and word in ("/approve", "/deny"):
                controls = ReplyControls(self.app.engine, self.app.store)
                turn = int(surface.approve_ref)
                answered = await controls.answer(self.caller, turn, approve=word == "/approve")
                if answered is not None:
                    self._print(answered.plain())
            else:
                self._typed.append(line)
                if line is None:  # end of input: the reply still finishes
                    await reply
                    return

    async def _command(self, line: str) -> bool:
        name, _, arg = line[1:].partition(" ")
        arg = arg.strip()
        if name in ("quit", "exit"):
            return False
        if name == "help":
            self._print(self._help())
        elif name == "new" and not arg:
            self.key = ConversationKey("console", "local", self.user, f"t{time.time_ns()}")
            self._print("(new conversation)")
        elif name == "models":
            for entry in self.app.catalog:
                self._print(f"  {entry.name:<20} {entry.display} [{entry.provider}]")
        elif name == "open":
            await self._open(arg)
        elif name == "attach":
            await asyncio.to_thread(self._attach, arg)
        elif name in ("generate", "cancel"):
            await self.images.command(name, arg, self.key, self.user)
        elif name == "image":
            await self._image(arg)
        else:
            await self._run(name, arg)
        return True

    def _attach(self, where: str) -> None:
        """A local file for the next message; its bytes are read at most up to the cap + 1."""
        path = Path(where).expanduser()
        try:
            with path.open("rb") as file:
                size = path.stat().st_size
                data = file.read(self.app.settings.attachment_max_bytes + 1)
        except OSError as exc:
            self._print(f"I can't open {path}: {exc.strerror or exc}.")
            return
        self._files.append(Attachment(path.name, size, data=data))
        self._print(f"({path.name} goes with your next message)")

    def _help(self) -> str:
        table = [c.usage(PLATFORM) for c in (*self.table.values(), IMAGE)]
        return f"{HELP}\n" + "\n".join(f"  {usage.strip('`')}" for usage in table)

    async def _image(self, arg: str) -> None:
        try:
            request = ImageRequest(self.key, self.user, **parse(IMAGE, arg, PLATFORM))
        except UserError as exc:
            self._print(str(exc))
            return
        await self.images.quote(request)

    async def _run(self, name: str, arg: str) -> None:
        """A command of the core's table: typed options in, its reply printed."""
        try:
            command, rest = find(self.table, name, arg, PLATFORM)
            args = parse(command, rest, PLATFORM)
        except UserError as exc:
            self._print(f"{exc} /help lists the commands.")
            return
        assert command.run is not None
        reply = await self._show(command.run(Here(self.caller, self.key, True), args))
        if reply is None:
            return
        if command.name == "archive" and "conversation" not in args:
            self.key = ConversationKey("console", "local", self.user, f"t{time.time_ns()}")
            self._print("(you're in a new conversation)")
        if reply.file is not None:
            path = Path.cwd() / reply.file.name
            path.write_bytes(reply.file.data)
            self._print(f"exported to {path}")

    async def _open(self, arg: str) -> None:
        service = self.app.conversations
        assert service is not None
        if not arg.isdecimal():
            self._print("/open takes a number")
            return
        try:
            conversation = await service.find(self.key, self.user, int(arg))
        except UserError as exc:
            self._print(str(exc))
            return
        self.key = ConversationKey("console", "local", self.user, conversation.thread_id)
        self._print(f"(resumed #{conversation.id}: {conversation.title})")

    @property
    def caller(self) -> Caller:
        return Caller.at(self.key, self.user, is_admin=True)  # the operator, at their terminal

    async def _show(self, work: Awaitable[Reply]) -> Reply | None:
        """Run a core command and print its reply (its buttons as the commands they stand for);
        a refusal is printed as it is."""
        try:
            reply = await work
        except UserError as exc:
            self._print(str(exc))
            return None
        self._print(reply.text(PLAIN))
        if reply.note:
            self._print(render_line(reply.note, PLAIN))
        for button in reply.buttons:
            self._print(f"({button.label}: /{button.action} {button.value})")
        return reply
