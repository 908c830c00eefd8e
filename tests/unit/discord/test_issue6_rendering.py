"""The pure parts of /history, /persona and the admin rule on Discord."""

from __future__ import annotations

from datetime import UTC, datetime

from adapters.discord.private import MAX_CONTENT, fit
from adapters.discord.replies import view_of
from bot.commands.access import Access
from bot.commands.reply import Button, Place, When, render_line
from bot.markup import DISCORD, discord_place


def _access(admin_role: str | None) -> Access:
    empty: frozenset[str] = frozenset()
    return Access(empty, empty, empty, empty, False, admin_role)


def test_admin_is_manage_server_or_the_admin_role_and_nobody_in_dms() -> None:
    assert _access(None).is_admin([], in_guild=True, manage_guild=True)
    assert not _access(None).is_admin(["admin"], in_guild=True, manage_guild=False)
    assert _access("admin").is_admin(["admin"], in_guild=True, manage_guild=False)
    assert not _access("admin").is_admin(["member"], in_guild=True, manage_guild=False)
    assert not _access("admin").is_admin(["admin"], in_guild=False, manage_guild=True)


def test_history_entries_link_to_their_threads_with_brackets_kept_out_of_the_link() -> None:
    when = datetime(2025, 1, 2, tzinfo=UTC)
    line = (Place("100", "200", "a [tricky] title"), " · ", When(when))
    text = render_line(line, DISCORD.at(discord_place(55)))
    stamp = f"<t:{int(when.timestamp())}:R>"
    assert text == f"[a (tricky) title](https://discord.com/channels/55/200) · {stamp}"


def test_history_buttons_have_stable_ids() -> None:
    assert view_of(()) is None
    view = view_of((Button("history", "1", "Previous"), Button("history", "3", "Next")))
    ids = [item.custom_id for item in view.children]  # type: ignore[union-attr,attr-defined]
    assert ids == ["parley:history:1", "parley:history:3"]


def test_long_text_is_cut_visibly_not_silently() -> None:
    text = fit("x" * 5000)
    assert len(text) <= MAX_CONTENT and text.endswith("(cut: too long to show here)")
