"""What Discord rejects in a message body, answered with Discord's own error shapes."""

from __future__ import annotations

from typing import Any

from tests.fakes.discord.payloads import IS_COMPONENTS_V2, TEXT_DISPLAY, text_displays

MAX_CONTENT = 2000
MAX_EMBEDS = 10
MAX_EMBED_TOTAL = 6000
EMBED_LIMITS = {"title": 256, "description": 4096}
MAX_FIELDS = 25
MAX_ROWS = 5
MAX_ROW_ITEMS = 5
MAX_CUSTOM_ID = 100
MAX_LABEL = 80
MAX_THREAD_NAME = 100
MAX_V2_COMPONENTS = 40
MAX_V2_TEXT = 4000
"""Characters in all of a Components V2 message's Text Displays together."""
MAX_V2_PROCESSED = 10170
"""Undocumented: UTF-8 bytes of the Text Displays plus 12 per display; past it Discord answers 500
(discord/discord-api-docs#8554, measured there to the byte)."""
V2_TOP_LEVEL = frozenset({1, 9, 10, 12, 13, 14, 17})
"""Action Row, Section, Text Display, Media Gallery, File, Separator, Container."""
INTERNAL_ERROR = {"message": "500: Internal Server Error", "code": 0}
ARCHIVE_DURATIONS = (60, 1440, 4320, 10080)

Errors = dict[str, Any]


def _put(errors: Errors, path: list[str | int], code: str, text: str) -> None:
    node = errors
    for part in path:
        node = node.setdefault(str(part), {})
    node.setdefault("_errors", []).append({"code": code, "message": text})


def _too_long(errors: Errors, path: list[str | int], value: object, limit: int) -> None:
    if isinstance(value, str) and len(value) > limit:
        _put(errors, path, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")


def form_error(errors: Errors) -> dict[str, Any]:
    return {"code": 50035, "message": "Invalid Form Body", "errors": errors}


def status_of(problem: dict[str, Any]) -> int:
    """The HTTP status that goes with a body from `message_errors`."""
    return 500 if problem is INTERNAL_ERROR else 400


def message_errors(
    body: dict[str, Any], *, edit: bool = False, current: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    """Discord's error body for an invalid message create/edit payload (400, or 500 past the
    undocumented Components V2 size), or None when it is valid. `current`: the message edited."""
    errors: Errors = {}
    flags = int(body.get("flags") or 0)
    was_v2 = current is not None and bool(int(current.get("flags") or 0) & IS_COMPONENTS_V2)
    if was_v2 and body.get("flags") is not None and not flags & IS_COMPONENTS_V2:
        _put(
            errors,
            ["flags"],
            "MESSAGE_CANNOT_REMOVE_COMPONENTS_V2_FLAG",
            "The IS_COMPONENTS_V2 flag cannot be removed",
        )
    if flags & IS_COMPONENTS_V2 or was_v2:
        for legacy in ("content", "embeds", "poll", "sticker_ids"):
            if body.get(legacy):
                _put(
                    errors,
                    [legacy],
                    "MESSAGE_CANNOT_USE_LEGACY_FIELDS_WITH_COMPONENTS_V2",
                    f"The '{legacy}' field cannot be used with MessageFlags.IS_COMPONENTS_V2",
                )
        components = body.get("components")
        if components is not None:
            _v2_errors(errors, components)
        if errors:
            return form_error(errors)
        displays = text_displays(components or [])
        if sum(len(t.encode()) + 12 for t in displays) > MAX_V2_PROCESSED:
            return INTERNAL_ERROR
        if not edit and not components:
            return {"code": 50006, "message": "Cannot send an empty message"}
        return None
    _too_long(errors, ["content"], body.get("content"), MAX_CONTENT)
    embeds = body.get("embeds") or []
    if len(embeds) > MAX_EMBEDS:
        _put(
            errors, ["embeds"], "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_EMBEDS} or fewer in length."
        )
    total = 0
    for i, embed in enumerate(embeds):
        for name, limit in EMBED_LIMITS.items():
            _too_long(errors, ["embeds", i, name], embed.get(name), limit)
            total += len(embed.get(name) or "")
        fields = embed.get("fields") or []
        if len(fields) > MAX_FIELDS:
            _put(errors, ["embeds", i, "fields"], "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer.")
        for j, field in enumerate(fields):
            _too_long(errors, ["embeds", i, "fields", j, "name"], field.get("name"), 256)
            _too_long(errors, ["embeds", i, "fields", j, "value"], field.get("value"), 1024)
            total += len(field.get("name") or "") + len(field.get("value") or "")
        footer = (embed.get("footer") or {}).get("text")
        author = (embed.get("author") or {}).get("name")
        _too_long(errors, ["embeds", i, "footer", "text"], footer, 2048)
        _too_long(errors, ["embeds", i, "author", "name"], author, 256)
        total += len(footer or "") + len(author or "")
    if total > MAX_EMBED_TOTAL:
        _put(
            errors, ["embeds"], "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000"
        )
    components = body.get("components")
    if components is not None:
        _component_errors(errors, components)
    if errors:
        return form_error(errors)
    if not edit and _empty(body):
        return {"code": 50006, "message": "Cannot send an empty message"}
    return None


def _count(components: list[Any]) -> int:
    return sum(1 + _count(c.get("components") or []) for c in components)


def _v2_errors(errors: Errors, components: list[Any]) -> None:
    """Components V2: known top-level types, at most 40 components in all, 4,000 characters of
    Text Display, and the usual button rules inside action rows."""
    seen: set[str] = set()  # custom ids, unique across the message
    if _count(components) > MAX_V2_COMPONENTS:
        _put(
            errors,
            ["components"],
            "BASE_TYPE_MAX_LENGTH",
            f"Must be {MAX_V2_COMPONENTS} or fewer in length.",
        )
    for i, component in enumerate(components):
        kind = component.get("type")
        if kind not in V2_TOP_LEVEL:
            _put(
                errors,
                ["components", i, "type"],
                "UNION_TYPE_CHOICES",
                f'Value of field "type" must be one of {sorted(V2_TOP_LEVEL)}.',
            )
        elif kind == TEXT_DISPLAY:
            text = component.get("content")
            if not isinstance(text, str) or not text:
                _put(
                    errors,
                    ["components", i, "content"],
                    "BASE_TYPE_REQUIRED",
                    "This field is required",
                )
            else:
                _too_long(errors, ["components", i, "content"], text, MAX_V2_TEXT)
        elif kind == 1:
            _row_errors(errors, i, component, seen)
    if sum(len(t) for t in text_displays(components)) > MAX_V2_TEXT:
        _put(
            errors,
            ["components"],
            "BASE_TYPE_MAX_LENGTH",
            f"Text Display content must be {MAX_V2_TEXT} or fewer in length in all.",
        )


def _empty(body: dict[str, Any]) -> bool:
    return not (
        body.get("content")
        or body.get("embeds")
        or body.get("components")
        or body.get("attachments")
        or body.get("sticker_ids")
    )


def _component_errors(errors: Errors, rows: list[Any]) -> None:
    """A legacy message's components: at most 5 action rows of buttons."""
    if len(rows) > MAX_ROWS:
        _put(
            errors,
            ["components"],
            "BASE_TYPE_MAX_LENGTH",
            f"Must be {MAX_ROWS} or fewer in length.",
        )
    seen: set[str] = set()
    for i, row in enumerate(rows):
        if row.get("type") != 1:
            _put(
                errors,
                ["components", i, "type"],
                "UNION_TYPE_CHOICES",
                'Value of field "type" must be one of (1,).',
            )
            continue
        _row_errors(errors, i, row, seen)


def _row_errors(errors: Errors, i: int, row: dict[str, Any], seen: set[str]) -> None:
    """One action row at `components[i]`: 1 to 5 items, buttons with valid labels and ids."""
    items = row.get("components") or []
    if not items:
        _put(
            errors,
            ["components", i, "components"],
            "BASE_TYPE_MIN_LENGTH",
            "Must be 1 or more in length.",
        )
    if len(items) > MAX_ROW_ITEMS:
        _put(
            errors,
            ["components", i, "components"],
            "BASE_TYPE_MAX_LENGTH",
            "Must be 5 or fewer in length.",
        )
    for j, item in enumerate(items):
        path: list[str | int] = ["components", i, "components", j]
        if item.get("type") != 2:
            continue
        _too_long(errors, [*path, "label"], item.get("label"), MAX_LABEL)
        if item.get("style") == 5:
            if not item.get("url"):
                _put(errors, [*path, "url"], "BASE_TYPE_REQUIRED", "This field is required")
            continue
        custom_id = item.get("custom_id")
        if not isinstance(custom_id, str) or not custom_id:
            _put(errors, [*path, "custom_id"], "BASE_TYPE_REQUIRED", "This field is required")
            continue
        _too_long(errors, [*path, "custom_id"], custom_id, MAX_CUSTOM_ID)
        if custom_id in seen:
            _put(
                errors,
                [*path, "custom_id"],
                "COMPONENT_CUSTOM_ID_DUPLICATED",
                "Component custom id cannot be duplicated",
            )
        seen.add(custom_id)


def thread_errors(body: dict[str, Any]) -> dict[str, Any] | None:
    errors: Errors = {}
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        _put(errors, ["name"], "BASE_TYPE_REQUIRED", "This field is required")
    else:
        _too_long(errors, ["name"], name, MAX_THREAD_NAME)
    archive = body.get("auto_archive_duration")
    if archive is not None and archive not in ARCHIVE_DURATIONS:
        _put(
            errors,
            ["auto_archive_duration"],
            "BASE_TYPE_CHOICES",
            "Value must be one of {60, 1440, 4320, 10080}.",
        )
    return form_error(errors) if errors else None
