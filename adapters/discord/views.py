"""Persistent buttons: Stop and Regenerate (the turn id in the custom_id), /history's pages
(the page) and the image buttons (`img:<verb>:<id>[:<n>]`, ids from bot/images/views.py).

`DynamicItem`s are registered once with `client.add_dynamic_items`, so a click on a message
posted before a restart is parsed from its custom_id alone. The views we send are stopped
before sending so discord.py does not also keep them in its in-memory view store (that would
run each click twice and grow with every message).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import discord
from discord import ui

from adapters.discord.access import admit
from bot.ports import Control, ImageButton

if TYPE_CHECKING:
    from adapters.discord.client import ParleyClient

PREFIX = "parley"


def custom_id(action: str, turn_id: str) -> str:
    return f"{PREFIX}:{action}:{turn_id}"


class Gated:
    """Mixed into every button: the allow-lists before its callback, as for slash commands."""

    async def interaction_check(self, interaction: discord.Interaction[Any], /) -> bool:
        client: ParleyClient = interaction.client
        return await admit(client.access, interaction)


REPLY_STYLES = {"stop": discord.ButtonStyle.danger, "approve": discord.ButtonStyle.success}


class ReplyButton(
    Gated,
    ui.DynamicItem[ui.Button[Any]],
    template=r"parley:(?P<action>stop|regenerate|approve|deny|history):(?P<value>[0-9]{1,19})",
):
    """Stop (while a reply streams; Approve and Deny while a tool call waits) or Regenerate (once
    it is done) for the turn in its id, or Previous / Next under /history for the page in its id
    (the user is always the clicker)."""

    def __init__(self, action: str, value: int, label: str = "") -> None:
        super().__init__(
            ui.Button(
                label=label or action.title(),
                style=REPLY_STYLES.get(action, discord.ButtonStyle.secondary),
                custom_id=custom_id(action, str(value)),
            )
        )
        self.action = action
        self.value = value

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: ui.Item[Any], match: Any, /
    ) -> ReplyButton:
        return cls(match["action"], int(match["value"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        client: ParleyClient = interaction.client
        if self.action in ("stop", "approve", "deny"):
            await client.buttons.press(interaction, self.action, self.value)
        elif self.action == "regenerate":
            await client.buttons.regenerate(interaction, self.value)
        else:
            await client.commands.turn_page(interaction, self.value)


def reply_view(text: str, controls: tuple[Control, ...] = ()) -> ui.LayoutView:
    """A chat reply message in Components V2: its text in a Text Display, which holds up to 4,000
    characters (a legacy `content` holds 2,000), and one button per control in a row under it."""
    view = ui.LayoutView(timeout=None)
    view.add_item(ui.TextDisplay(text))
    if controls:
        row: ui.ActionRow[ui.LayoutView] = ui.ActionRow()
        for control in controls:
            row.add_item(ReplyButton(control.action, int(control.ref), control.label[:80]))
        view.add_item(row)
    view.stop()  # dispatch goes through the dynamic items only
    return view


class ImageAction(
    Gated,
    ui.DynamicItem[ui.Button[Any]],
    template=r"img:(?P<verb>[cxar]):(?P<ref>[0-9A-Za-z_-]{1,40})(?::(?P<n>[0-9]{1,2}))?",
):
    """Any image button: Generate, an alternative, Cancel, Regenerate. The core parses the id."""

    def __init__(self, custom_id: str, label: str = "Image", style: int = 2) -> None:
        super().__init__(
            ui.Button(label=label[:80], style=discord.ButtonStyle(style), custom_id=custom_id)
        )

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: ui.Item[Any], match: Any, /
    ) -> ImageAction:
        return cls(match.string)

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        client: ParleyClient = interaction.client
        await client.images.click(interaction, self.item.custom_id or "")


def _style(button: ImageButton) -> int:
    if button.primary:
        return discord.ButtonStyle.success.value
    if button.action == "cancel":
        return discord.ButtonStyle.danger.value
    return discord.ButtonStyle.secondary.value


def image_view(buttons: tuple[ImageButton, ...]) -> ui.View | None:
    """The image buttons, five to a row, dispatched only through the dynamic item."""
    if not buttons:
        return None
    view = ui.View(timeout=None)
    for button in buttons[:25]:
        view.add_item(ImageAction(button.custom_id, button.label, _style(button)))
    view.stop()
    return view
