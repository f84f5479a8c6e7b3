"""Slack's documented Block Kit limits, as the stand-in enforces them on every chat.* call.

Owns the validation of ``blocks`` (and attachments' blocks) with one problem per violation, each
naming its path (``blocks[1].elements[0].text: must be at most 3000 characters``), as Slack's
``invalid_blocks`` answer does, and the parsing of a chat.* call's content. Standard library only;
it must not import rollout.
"""

from __future__ import annotations

import json
from typing import Any

BLOCK_TYPES = frozenset(
    {"section", "actions", "context", "header", "divider", "image", "rich_text", "input", "file", "video", "markdown"}
)


def content(args: dict[str, Any]) -> tuple[str, list[dict[str, Any]], list[dict[str, Any]]] | dict[str, Any]:
    """(text, blocks, attachments) of a chat.* call, or Slack's error answer."""
    try:
        blocks = json_list(args.get("blocks"))
        attachments = json_list(args.get("attachments"))
    except ValueError as e:
        return {"ok": False, "error": "invalid_blocks", "errors": [str(e)]}
    text = str(args.get("text") or "")
    if not text and not blocks and not attachments:
        return {"ok": False, "error": "no_text"}
    if len(text) > 40000:
        return {"ok": False, "error": "msg_too_long"}
    problems = validate_blocks(blocks)
    for i, attachment in enumerate(attachments):
        problems += [f"attachments[{i}].{p}" for p in validate_blocks(json_list(attachment.get("blocks")))]
    if problems:
        return {
            "ok": False,
            "error": "invalid_blocks",
            "errors": problems,
            "response_metadata": {"messages": [f"[ERROR] {p}" for p in problems]},
        }
    return text, blocks, attachments


def json_list(value: Any) -> list[dict[str, Any]]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        value = json.loads(value)
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ValueError("must be a JSON array of objects")
    return value


def _text_problem(obj: Any, where: str, *, limit: int, plain_only: bool = False) -> list[str]:
    if not isinstance(obj, dict) or obj.get("type") not in ("plain_text", "mrkdwn"):
        return [f"{where}: must be a text object"]
    if plain_only and obj["type"] != "plain_text":
        return [f"{where}: must be plain_text"]
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        return [f"{where}.text: must be a non-empty string"]
    if len(text) > limit:
        return [f"{where}.text: must be at most {limit} characters"]
    return []


def validate_blocks(blocks: list[dict[str, Any]]) -> list[str]:
    """Slack's documented Block Kit limits for the blocks rollout sends; each problem names its path."""
    problems: list[str] = []
    if len(blocks) > 50:
        problems.append("blocks: at most 50 blocks")
    block_ids: set[str] = set()
    action_ids: set[str] = set()
    for i, block in enumerate(blocks):
        where, kind = f"blocks[{i}]", block.get("type")
        if kind not in BLOCK_TYPES:
            problems.append(f"{where}.type: unknown block type {kind!r}")
            continue
        block_id = block.get("block_id")
        if block_id is not None:
            if not isinstance(block_id, str) or len(block_id) > 255 or block_id in block_ids:
                problems.append(f"{where}.block_id: must be unique and at most 255 characters")
            block_ids.add(str(block_id))
        if kind == "section":
            if "text" not in block and "fields" not in block:
                problems.append(f"{where}: a section needs text or fields")
            if "text" in block:
                problems += _text_problem(block["text"], f"{where}.text", limit=3000)
            for j, f in enumerate(block.get("fields", ())):
                problems += _text_problem(f, f"{where}.fields[{j}]", limit=2000)
        elif kind == "header":
            problems += _text_problem(block.get("text"), f"{where}.text", limit=150, plain_only=True)
        elif kind == "context":
            elements = block.get("elements", ())
            if not 1 <= len(elements) <= 10:
                problems.append(f"{where}.elements: 1 to 10 elements")
            for j, e in enumerate(elements):
                if e.get("type") != "image":
                    problems += _text_problem(e, f"{where}.elements[{j}]", limit=3000)
        elif kind == "actions":
            elements = block.get("elements", ())
            if not 1 <= len(elements) <= 25:
                problems.append(f"{where}.elements: 1 to 25 elements")
            for j, e in enumerate(elements):
                problems += _button_problems(e, f"{where}.elements[{j}]", action_ids)
    return problems


def _button_problems(element: dict[str, Any], where: str, action_ids: set[str]) -> list[str]:
    if element.get("type") != "button":
        return []  # other interactive elements are not used by rollout
    problems = _text_problem(element.get("text"), f"{where}.text", limit=75, plain_only=True)
    action_id = element.get("action_id")
    if action_id is not None:
        if not isinstance(action_id, str) or len(action_id) > 255 or action_id in action_ids:
            problems.append(f"{where}.action_id: must be unique in the message and at most 255 characters")
        action_ids.add(str(action_id))
    if len(str(element.get("value", ""))) > 2000:
        problems.append(f"{where}.value: must be at most 2000 characters")
    if element.get("style") not in (None, "primary", "danger"):
        problems.append(f"{where}.style: must be primary or danger")
    confirm = element.get("confirm")
    if confirm is not None:
        problems += _text_problem(confirm.get("title"), f"{where}.confirm.title", limit=100, plain_only=True)
        problems += _text_problem(confirm.get("text"), f"{where}.confirm.text", limit=300)
        problems += _text_problem(confirm.get("confirm"), f"{where}.confirm.confirm", limit=30, plain_only=True)
        problems += _text_problem(confirm.get("deny"), f"{where}.confirm.deny", limit=30, plain_only=True)
    return problems
