"""Small pieces of issue 6: log fields, redaction, Llama Guard parsing, settings, /metrics."""

from __future__ import annotations

import io
import json
import logging

import httpx
import pytest

from bot.config import ConfigurationError, load_settings
from bot.engine.moderation import ModerationUnavailable, parse_llama_guard
from bot.engine.personas import PersonaError, normalize_name
from bot.ops.logs import configure_logging, event
from bot.ops.metrics import Metrics
from bot.ops.web import WebServer
from bot.resilience.breaker import BreakerBoard


def test_event_fields_become_json_keys_and_secrets_are_redacted() -> None:
    stream = io.StringIO()
    configure_logging("DEBUG", "json", ["sk-very-secret-key"], stream=stream)
    try:
        event(
            logging.getLogger("parley.test"),
            logging.INFO,
            "reply done",
            conversation_key="discord:g:c:t",
            provider="openai",
            model="gpt",
            duration_ms=120,
            prompt_tokens=3,
            error="auth failed for sk-very-secret-key",
        )
    finally:
        configure_logging("WARNING")
    entry = json.loads(stream.getvalue())
    assert entry["event"] == "reply done" and entry["conversation_key"] == "discord:g:c:t"
    assert (entry["provider"], entry["duration_ms"], entry["prompt_tokens"]) == ("openai", 120, 3)
    assert "sk-very-secret-key" not in stream.getvalue()
    assert entry["msg"].startswith("reply done conversation_key=discord:g:c:t provider=openai")


def test_discord_interaction_tokens_in_logged_urls_are_redacted() -> None:
    stream = io.StringIO()
    token = "aW50ZXJhY3Rpb246MTIzNDU2Nzg5MDEyMzQ1Njc4OTpfX3Rva2VuX18"
    # discord's loggers stay at INFO unless LOG_LEVEL_LIBRARIES asks for DEBUG: ask, so the
    # line is printed and its redaction can be seen.
    configure_logging("DEBUG", "text", [], stream=stream, libraries="DEBUG")
    try:
        logging.getLogger("discord.webhook.async_").debug(
            "Webhook ID %s with %s %s has returned status code %s",
            "42",
            "PATCH",
            f"https://discord.com/api/v10/webhooks/42/{token}/messages/7",
            200,
        )
    finally:
        configure_logging("WARNING")
    assert token not in stream.getvalue()
    assert "/api/v10/webhooks/[REDACTED]/messages/7" in stream.getvalue()


def test_event_reads_as_key_values_in_text_logs() -> None:
    stream = io.StringIO()
    configure_logging("INFO", "text", [], stream=stream)
    try:
        event(logging.getLogger("parley.test"), logging.INFO, "x", a=1, b=None)
    finally:
        configure_logging("WARNING")
    assert stream.getvalue().rstrip().endswith("parley.test x a=1 b=-")


@pytest.mark.parametrize(
    ("response", "flagged", "categories"),
    [
        ("safe", False, ()),
        ("\n\nsafe", False, ()),
        ("unsafe\nS1", True, ("S1",)),
        ("unsafe\nS1, S10", True, ("S1", "S10")),
        ({"safe": False, "categories": ["S2"]}, True, ("S2",)),
        ({"safe": True}, False, ()),
    ],
)
def test_llama_guard_answers_are_parsed(
    response: object, flagged: bool, categories: tuple[str, ...]
) -> None:
    verdict = parse_llama_guard(response)
    assert (verdict.flagged, verdict.categories) == (flagged, categories)


@pytest.mark.parametrize("response", ["maybe", None, 3, {"x": 1}])
def test_an_odd_llama_guard_answer_is_an_outage_not_a_verdict(response: object) -> None:
    with pytest.raises(ModerationUnavailable):
        parse_llama_guard(response)


def test_moderation_model_setting_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODERATION_MODEL", "bogus")
    with pytest.raises(ConfigurationError, match="MODERATION_MODEL"):
        load_settings(_env_file=None)
    monkeypatch.setenv("MODERATION_MODEL", "workers-ai:@cf/meta/llama-guard-3-8b")
    monkeypatch.setenv("CHAT_MESSAGES_PER_MINUTE", "0")
    with pytest.raises(ConfigurationError, match="CHAT_MESSAGES_PER_MINUTE"):
        load_settings(_env_file=None)


def test_persona_names_are_normalized_or_refused() -> None:
    assert normalize_name("  Pirate_1 ") == "pirate_1"
    for bad in ("", "-x", "two words", "x" * 33):
        with pytest.raises(PersonaError):
            normalize_name(bad)


async def test_metrics_are_served_in_prometheus_text_format() -> None:
    metrics = Metrics()
    board = BreakerBoard()
    board.get("openai")  # a breaker exists once a provider was used
    metrics.watch_breakers(board.snapshots)
    metrics.requests.labels("slack", "complete").inc()
    web = WebServer()
    web.enable_metrics(metrics)
    port = await web.start("127.0.0.1", 0)
    try:
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{port}/metrics")
    finally:
        await web.stop()
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert 'parley_chat_requests_total{platform="slack",status="complete"} 1.0' in response.text
    assert 'parley_breaker_state{provider="openai"}' in response.text
