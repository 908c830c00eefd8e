"""The pure parts of /history, /persona and the admin rule on Discord."""

from __future__ import annotations

from datetime import UTC, datetime

from adapters.discord.access import Access
from adapters.discord.conversations import render_history
from adapters.discord.personas import split_tools
from adapters.discord.private import MAX_CONTENT, fit
from adapters.discord.views import history_view
from bot.engine.conversations import ConversationSummary, HistoryPage


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
    item = ConversationSummary(7, "a [tricky] title", when, 4, "100", "200", False)
    text = render_history(HistoryPage((item,), 2, 10, has_more=False), 55)
    assert "11. [a (tricky) title](https://discord.com/channels/55/200)" in text
    assert f"<t:{int(when.timestamp())}:R>" in text and "id `7`" in text
    assert "no conversations" in render_history(HistoryPage((), 1, 10, False), 55)


def test_history_buttons_have_stable_ids_and_only_where_there_is_a_page() -> None:
    assert history_view(1, has_more=False) is None
    ids = [item.custom_id for item in history_view(2, has_more=True).children]  # type: ignore[union-attr,attr-defined]
    assert ids == ["parley:history:1", "parley:history:3"]


def test_tools_option_is_a_comma_list_and_none_clears() -> None:
    assert split_tools(None) is None
    assert split_tools("none") == ()
    assert split_tools("generate_image, web") == ("generate_image", "web")


def test_long_text_is_cut_visibly_not_silently() -> None:
    text = fit("x" * 5000)
    assert len(text) <= MAX_CONTENT and text.endswith("(cut: too long to show here)")
