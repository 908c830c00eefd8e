"""Images in the console: quotes printed with numbered choices, images saved as files.

`/image <prompt> [quality:..] [size:..] [provider:..]` asks for a quote (so does the model, through
the generate_image tool); `/generate [n]` confirms choice n (1, the quoted price, by default) of
the last quote and `/cancel` cancels it, through the same `bot.images.flow.handle_click` the chat
platforms' buttons use. Nothing is charged before `/generate`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TextIO

from bot.domain import Actor, ConversationKey
from bot.images.engine import ImageEngine, ImageRequest
from bot.images.flow import IMAGES_OFF, click, offer_quote
from bot.ports import ImageButton, ImageUpload, MessageRef, QuoteOffer


class ConsoleImageSurface:
    """Prints offers and notices; an upload is written to a file in `directory`."""

    def __init__(self, out: TextIO, directory: Path) -> None:
        self._out = out
        self._directory = directory
        self._count = 0
        self.choices: tuple[ImageButton, ...] = ()
        """What `/generate [n]` picks from: the last quote's choices (or Regenerate after an
        upload)."""
        self.cancel: ImageButton | None = None

    def _print(self, text: str) -> None:
        self._out.write(text + "\n")
        self._out.flush()

    async def offer(self, offer: QuoteOffer) -> MessageRef:
        self.choices = tuple(b for b in offer.buttons if b.action != "cancel")
        self.cancel = next((b for b in offer.buttons if b.action == "cancel"), None)
        self._print("\n" + offer.text.replace("**", ""))
        for n, button in enumerate(self.choices, start=1):
            command = "/generate" if n == 1 else f"/generate {n}"
            self._print(f"  [{n}] {button.label}  ({command})")
        if self.cancel is not None:
            self._print("  [x] Cancel  (/cancel)")
        self._count += 1
        return MessageRef(f"quote-{self._count}")

    async def upload(self, image: ImageUpload) -> MessageRef:
        path = _free_path(self._directory / Path(image.filename).name)
        await asyncio.to_thread(path.write_bytes, image.data)
        self._print(f"\n[image saved to {path}]\n{image.caption}")
        self.choices = image.buttons
        self.cancel = None
        for n, button in enumerate(self.choices, start=1):
            self._print(f"  [{n}] {button.label}  (/generate{'' if n == 1 else f' {n}'})")
        self._count += 1
        return MessageRef(f"image-{self._count}")

    async def notify(self, text: str) -> None:
        self._print(f"\n[{text}]")


class ConsoleImages:
    """The console's /image, /generate and /cancel, on one ConsoleImageSurface."""

    def __init__(self, engine: ImageEngine | None, surface: ConsoleImageSurface) -> None:
        self.engine = engine
        self.surface = surface

    async def command(self, name: str, arg: str, key: ConversationKey, user: str) -> None:
        """`/generate [n]` or `/cancel`: a click on the last quote's choice."""
        if self.engine is None:
            await self.surface.notify(IMAGES_OFF)
        elif name == "generate":
            await self._click(self._choice(arg), Actor.at(key, user))
        else:
            await self._click(self.surface.cancel, Actor.at(key, user))

    async def quote(self, request: ImageRequest) -> None:
        """`/image <prompt> [options]`: a quote, printed with its choices; nothing is charged."""
        if self.engine is None:
            await self.surface.notify(IMAGES_OFF)
            return
        await offer_quote(self.engine, request, self.surface)

    def _choice(self, arg: str) -> ImageButton | None:
        choices = self.surface.choices
        try:
            n = int(arg) if arg else 1
        except ValueError:
            return None
        return choices[n - 1] if 1 <= n <= len(choices) else None

    async def _click(self, button: ImageButton | None, actor: Actor) -> None:
        if button is None:
            await self.surface.notify("No such choice: ask for a quote first with /image <prompt>.")
            return
        await click(self.engine, button.custom_id, actor, self.surface)


def _free_path(path: Path) -> Path:
    """`path`, or `name-2.ext`, `name-3.ext`, … when it exists: never overwrite a file."""
    candidate, n = path, 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
    return candidate
