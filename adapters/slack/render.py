"""Pure rendering: a platform-neutral ``Reply`` -> Slack message payloads (Block Kit).

Nothing here touches the network. Every function returns plain dicts that can go straight
to ``chat.postMessage``, a ``response_url`` or an incoming webhook.

Slack limits enforced here (see ``SLACK_LIMITS`` and the constants below): 50 blocks per
message, section text 3,000 chars, header 150, context 10 elements, actions 25 elements,
button text 75 and value 2,000, image URL 3,000, and a total block size well under the
~13k characters at which Slack answers ``msg_blocks_too_long``. A reply that does not fit
is split into several messages; a card is never dropped.

Slack mrkdwn has exactly three control characters, ``& < >``; they are escaped everywhere
user-visible text goes. ``* _ ~ `` `` have no escape in mrkdwn: they are kept verbatim (at
worst they change emphasis; they cannot break a link, a mention or the payload).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from bot.models import AdapterLimits, Button, Card, Reply, shorten

Block = dict[str, Any]
Message = dict[str, Any]

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_HEADER_TEXT = 150
MAX_CONTEXT_TEXT = 2000
MAX_ACTIONS_ELEMENTS = 25
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2000
MAX_IMAGE_URL = 3000
MAX_ALT_TEXT = 2000
# Slack rejects messages whose blocks total roughly 13k characters (msg_blocks_too_long);
# we measure the serialised JSON, which over-counts, and stay below 12k.
MAX_BLOCKS_JSON_CHARS = 12_000
# The notification text shown in push notifications and as the message's fallback.
MAX_FALLBACK_TEXT = 300
# Links with absurd URLs are shown as plain text rather than bloating the message.
MAX_LINK_URL = 1000
# A digest with at most this many papers is one message; longer ones get a thread.
SHORT_DIGEST_CARDS = 3
COMPACT_TITLE_CHARS = 120
AUTHORS_SHOWN = 3

ACTION_RUN_PREFIX = "papers_run_"
ACTION_SHARE_PREFIX = "papers_share_"
# What follows a prefix: a reply button's index, or a card's position and button index.
ACTION_SUFFIX = r"(\d+|card\d+_\d+)"

SLACK_LIMITS = AdapterLimits(
    max_cards_per_message=10,
    max_text_chars=MAX_SECTION_TEXT,
    max_title_chars=MAX_HEADER_TEXT,
    max_summary_chars=300,
    messages_per_second_per_channel=1.0,
    supports_threads=True,
    supports_ephemeral=True,
    supports_buttons=True,
)


# --- mrkdwn text helpers ---------------------------------------------------------------


def escape_mrkdwn(text: str) -> str:
    """Escape Slack's three control characters; the only escaping mrkdwn knows."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _escaped_len(char: str) -> int:
    return {"&": 5, "<": 4, ">": 4}.get(char, 1)


def escape_within(text: str, max_chars: int, *, ellipsis: str = "…") -> str:
    """``text`` escaped, shortened (word boundary when possible) to at most ``max_chars``."""
    escaped = escape_mrkdwn(text)
    if len(escaped) <= max_chars:
        return escaped
    # First try a word-boundary cut sized for the raw text, then cut hard on escaped cost.
    candidate = escape_mrkdwn(shorten(text, max_chars, ellipsis=ellipsis))
    if len(candidate) <= max_chars:
        return candidate
    budget = max_chars - len(ellipsis)
    used = 0
    kept: list[str] = []
    for char in text:
        cost = _escaped_len(char)
        if used + cost > budget:
            break
        kept.append(char)
        used += cost
    return escape_mrkdwn("".join(kept).rstrip()) + ellipsis if budget > 0 else ""


def one_line(text: str) -> str:
    """Whitespace (newlines included) collapsed: titles and names stay on one line."""
    return " ".join(text.split())


def link(url: str | None, label: str, *, max_label: int = 300) -> str:
    """A mrkdwn link ``<url|label>``; plain escaped label when the URL is unusable."""
    text = escape_within(label, max_label)
    if not url or not url.startswith(("https://", "http://")) or len(url) > MAX_LINK_URL:
        return text
    # "|" and ">" end the URL part of a link; percent-encode them.
    safe_url = escape_mrkdwn(url.replace("|", "%7C")).replace("&gt;", "%3E")
    return f"<{safe_url}|{text}>"


def plain_text(text: str, max_chars: int) -> dict[str, Any]:
    """A ``plain_text`` object (no escaping needed) within ``max_chars``."""
    return {"type": "plain_text", "text": shorten(text, max_chars) or " ", "emoji": True}


def mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}


def compact_count(value: int) -> str:
    """1234 -> '1.2k'."""
    if value >= 10_000:
        return f"{value // 1000}k"
    if value >= 1000:
        return f"{value / 1000:.1f}k"
    return str(value)


# --- cards -----------------------------------------------------------------------------


def authors_line(authors: tuple[str, ...], *, shown: int = AUTHORS_SHOWN) -> str:
    """'A, B, C +4 more' (raw text, not escaped)."""
    names = [one_line(a) for a in authors if a.strip()]
    if len(names) <= shown + 1:
        return ", ".join(names)
    return f"{', '.join(names[:shown])} +{len(names) - shown} more"


def stats_line(card: Card) -> str:
    """'▲ 42 upvotes · 💬 3 comments' (only the numbers the source gave)."""
    parts = []
    if card.upvotes is not None:
        parts.append(f"▲ {card.upvotes} upvote{'s' if card.upvotes != 1 else ''}")
    if card.comments:
        parts.append(f"💬 {card.comments} comment{'s' if card.comments != 1 else ''}")
    return " · ".join(parts)


def card_blocks(
    card: Card,
    limits: AdapterLimits = SLACK_LIMITS,
    *,
    number: int | None = None,
    summary_chars: int | None = None,
    position: int = 0,
) -> list[Block]:
    """The blocks of one paper: a section (linked title, authors, stats, summary, thumbnail),
    a context line of links, and the card's buttons ("Similar"). 1-3 blocks, each within
    Slack's limits; ``position`` (of the card in its message) keeps action ids unique.

    ``summary_chars``: the summary's budget (default: twice the declared card summary, so
    a message holds several cards); the section's 3,000 characters bound it anyway."""
    prefix = f"{number}. " if number is not None else ""
    title = link(
        card.url,
        prefix + (one_line(card.title) or card.paper_id),
        max_label=min(limits.max_title_chars, 300),
    )
    lines = [f"*{title}*"]
    if card.authors:
        lines.append(escape_within(authors_line(card.authors), 300))
    stats = stats_line(card)
    if stats:
        lines.append(stats)
    head = "\n".join(lines)
    summary_budget = MAX_SECTION_TEXT - len(head) - 1
    summary = " ".join(card.summary.split())
    if summary and summary_budget > 20:
        budget = summary_chars or 2 * limits.max_summary_chars
        head += "\n" + escape_within(summary, min(summary_budget, budget))
    section: Block = {"type": "section", "text": mrkdwn(head)}
    thumb = card.thumbnail
    if thumb and thumb.startswith(("https://", "http://")) and len(thumb) <= MAX_IMAGE_URL:
        section["accessory"] = {
            "type": "image",
            "image_url": thumb,
            "alt_text": shorten(card.title, MAX_ALT_TEXT) or "thumbnail",
        }
    blocks = [section]
    context = links_line(card)
    if context:
        blocks.append({"type": "context", "elements": [mrkdwn(part) for part in context]})
    buttons = [
        element
        for i, button in enumerate(card.actions)
        if (element := button_element(button, f"card{position}_{i}")) is not None
    ]
    if buttons:
        blocks.append({"type": "actions", "elements": buttons})
    return blocks


def without_images(message: Message) -> Message | None:
    """``message`` without its thumbnails (None: it has none). Slack downloads every
    ``image_url`` itself and refuses the whole message when one fails."""
    blocks = message.get("blocks") or []
    if not any(_has_image(b) for b in blocks):
        return None
    kept = [_no_accessory(b) for b in blocks if b.get("type") != "image"]
    return {**message, "blocks": kept}


def _has_image(block: Block) -> bool:
    accessory = block.get("accessory")
    return block.get("type") == "image" or (
        isinstance(accessory, dict) and accessory.get("type") == "image"
    )


def _no_accessory(block: Block) -> Block:
    if not _has_image(block):
        return block
    return {k: v for k, v in block.items() if k != "accessory"}


def links_line(card: Card) -> list[str]:
    """'arXiv', 'Code ⭐ 1.2k', 'Project page', '2026-11-20', keywords: one context element
    each (at most 5 of Slack's 10, each far below the element text limit)."""
    parts: list[str] = []
    if card.arxiv_url and card.arxiv_url != card.url:
        parts.append(link(card.arxiv_url, "arXiv"))
    if card.github:
        code = link(card.github, "Code")
        if card.github_stars:
            code += f" ⭐ {compact_count(card.github_stars)}"
        parts.append(code)
    if card.project_page:
        parts.append(link(card.project_page, "Project page"))
    if card.published:
        parts.append(card.published.isoformat())
    keywords = [one_line(k) for k in card.keywords[:5] if k.strip()]
    if keywords:
        parts.append(escape_within(", ".join(keywords), 200))
    return parts


def compact_line(card: Card, number: int) -> str:
    """One line of a digest's numbered list: '3. <url|Title> · ▲ 42 · 💬 3'."""
    line = f"{number}. " + link(
        card.url, one_line(card.title) or card.paper_id, max_label=COMPACT_TITLE_CHARS
    )
    if card.upvotes is not None:
        line += f" · ▲ {card.upvotes}"
    if card.comments:
        line += f" · 💬 {card.comments}"
    return line


# --- non-card pieces -----------------------------------------------------------------


def text_sections(text: str, max_chars: int = MAX_SECTION_TEXT) -> list[Block]:
    """Plain ``text`` as mrkdwn sections, split on line (then word, then char) boundaries."""
    sections: list[Block] = []
    current = ""
    for raw_line in text.strip("\n").split("\n"):
        for piece in _split_escaped(raw_line, max_chars):
            candidate = f"{current}\n{piece}" if current else piece
            if len(candidate) <= max_chars:
                current = candidate
            else:
                sections.append({"type": "section", "text": mrkdwn(current)})
                current = piece
    if current.strip():
        sections.append({"type": "section", "text": mrkdwn(current)})
    return sections


def _split_escaped(line: str, max_chars: int) -> list[str]:
    """One raw line, escaped, as pieces of at most ``max_chars`` (never breaks an entity)."""
    escaped = escape_mrkdwn(line)
    if len(escaped) <= max_chars:
        return [escaped or " "]
    pieces: list[str] = []
    current: list[str] = []
    used = 0
    for char in line:
        cost = _escaped_len(char)
        if used + cost > max_chars:
            pieces.append(escape_mrkdwn("".join(current)))
            current, used = [], 0
        current.append(char)
        used += cost
    if current:
        pieces.append(escape_mrkdwn("".join(current)))
    return pieces


def header_block(title: str) -> Block:
    return {"type": "header", "text": plain_text(" ".join(title.split()), MAX_HEADER_TEXT)}


def footer_block(footer: str) -> Block:
    return {"type": "context", "elements": [mrkdwn(escape_within(footer, MAX_CONTEXT_TEXT))]}


def button_element(button: Button, index: int | str) -> dict[str, Any] | None:
    """A Block Kit button whose value is the command line; None if it cannot be stateless.
    ``index`` makes its action id unique in its message."""
    if len(button.command) > MAX_BUTTON_VALUE:
        return None  # the value could not carry the command; offering a broken button is worse
    prefix = ACTION_SHARE_PREFIX if button.share else ACTION_RUN_PREFIX
    element: dict[str, Any] = {
        "type": "button",
        "action_id": f"{prefix}{index}",
        "text": plain_text(button.label, MAX_BUTTON_TEXT),
        "value": button.command or " ",
    }
    if button.share:
        element["style"] = "primary"
    return element


def action_blocks(buttons: tuple[Button, ...]) -> list[Block]:
    """Buttons in actions blocks of at most 25 elements, each block small enough to fit a
    message on its own (long command values make a button up to ~2.1k characters)."""
    blocks: list[Block] = []
    current: list[dict[str, Any]] = []
    size = 0
    for index, button in enumerate(buttons):
        element = button_element(button, index)
        if element is None:
            continue
        element_size = len(json.dumps(element, ensure_ascii=False)) + 2
        too_big = size + element_size > MAX_BLOCKS_JSON_CHARS // 2
        if current and (len(current) >= MAX_ACTIONS_ELEMENTS or too_big):
            blocks.append({"type": "actions", "elements": current})
            current, size = [], 0
        current.append(element)
        size += element_size
    if current:
        blocks.append({"type": "actions", "elements": current})
    return blocks


def fallback_text(reply: Reply) -> str:
    """The short notification text of a message (its blocks carry the content)."""
    head = reply.title or reply.text.strip().split("\n", 1)[0] or "Papers"
    if reply.cards:
        count = len(reply.cards)
        head = f"{head} ({count} paper{'s' if count != 1 else ''})"
    return escape_within(" ".join(head.split()), MAX_FALLBACK_TEXT)


# --- packing blocks into messages ------------------------------------------------------


def blocks_size(blocks: list[Block]) -> int:
    return len(json.dumps(blocks, ensure_ascii=False))


@dataclass
class _Packer:
    """Fills messages with groups of blocks, starting a new message when one is full."""

    fallback: str
    max_cards: int
    messages: list[list[Block]] = field(default_factory=lambda: [[]])
    cards_in_current: int = 0
    size_of_current: int = 2  # JSON size of the current block list: "[" + blocks + "]"

    def add(self, group: list[Block], *, is_card: bool = False) -> None:
        current = self.messages[-1]
        # Same total as blocks_size(current + group), computed incrementally.
        group_size = sum(len(json.dumps(b, ensure_ascii=False)) + 2 for b in group)
        fits = (
            len(current) + len(group) <= MAX_BLOCKS
            and self.size_of_current + group_size - (0 if current else 2) <= MAX_BLOCKS_JSON_CHARS
            and not (is_card and self.cards_in_current >= self.max_cards)
        )
        if current and not fits:
            self.messages.append([])
            self.cards_in_current = 0
            self.size_of_current = 2
            current = self.messages[-1]
        self.size_of_current += group_size - (0 if current else 2)
        current.extend(group)
        if is_card:
            self.cards_in_current += 1

    def result(self) -> list[Message]:
        return [{"text": self.fallback, "blocks": blocks} for blocks in self.messages if blocks]


def render_reply(reply: Reply, limits: AdapterLimits = SLACK_LIMITS) -> list[Message]:
    """A reply as one or more messages: header, text, full cards, footer, buttons."""
    packer = _Packer(fallback_text(reply), max(1, limits.max_cards_per_message))
    if reply.title:
        packer.add([header_block(reply.title)])
    for section in text_sections(reply.text):
        packer.add([section])
    # One card (`/papers paper`) has the message to itself: its whole summary fits.
    alone = MAX_SECTION_TEXT if len(reply.cards) == 1 else None
    for position, card in enumerate(reply.cards):
        packer.add(card_blocks(card, limits, summary_chars=alone, position=position), is_card=True)
    _add_tail(packer, reply)
    messages = packer.result()
    return messages or [{"text": packer.fallback, "blocks": [header_block(packer.fallback)]}]


def _add_tail(packer: _Packer, reply: Reply) -> None:
    if reply.footer:
        packer.add([footer_block(reply.footer)])
    for block in action_blocks(reply.buttons):
        packer.add([block])


@dataclass(frozen=True)
class DigestPlan:
    """A digest as Slack messages: ``parent`` in the channel, ``thread`` replies under it."""

    parent: Message
    thread: tuple[Message, ...] = ()

    @property
    def messages(self) -> tuple[Message, ...]:
        return (self.parent, *self.thread)


def render_digest(reply: Reply, limits: AdapterLimits = SLACK_LIMITS) -> DigestPlan:
    """A short digest is one message; a longer one is a header message with a compact
    numbered list, each paper's full card following in its thread (numbered alike)."""
    if len(reply.cards) <= SHORT_DIGEST_CARDS:
        messages = render_reply(reply, limits)
        return DigestPlan(messages[0], tuple(messages[1:]))
    packer = _Packer(fallback_text(reply), max(1, limits.max_cards_per_message))
    if reply.title:
        packer.add([header_block(reply.title)])
    for section in text_sections(reply.text):
        packer.add([section])
    first = reply.first_number
    lines = "\n".join(compact_line(card, n) for n, card in enumerate(reply.cards, first))
    for section in _line_sections(lines):
        packer.add([section])
    _add_tail(packer, reply)
    packer.add([{"type": "context", "elements": [mrkdwn("Full cards in the thread 🧵")]}])
    list_messages = packer.result()
    cards = _Packer(fallback_text(reply), max(1, limits.max_cards_per_message))
    for number, card in enumerate(reply.cards, first):
        cards.add(card_blocks(card, limits, number=number, position=number), is_card=True)
    return DigestPlan(list_messages[0], tuple(list_messages[1:] + cards.result()))


def _line_sections(mrkdwn_lines: str) -> list[Block]:
    """Already-escaped lines grouped into sections of at most 3,000 chars."""
    sections: list[Block] = []
    current = ""
    for line in mrkdwn_lines.split("\n"):
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > MAX_SECTION_TEXT and current:
            sections.append({"type": "section", "text": mrkdwn(current)})
            candidate = line
        current = candidate
    if current:
        sections.append({"type": "section", "text": mrkdwn(current)})
    return sections


def shared_reply_blocks(messages: list[Message], user_id: str) -> list[Message]:
    """Messages re-posted in the channel with a 'Shared by' line at the end of the last."""
    note = {"type": "context", "elements": [mrkdwn(f"Shared by <@{escape_mrkdwn(user_id)}>")]}
    result = [dict(m) for m in messages]
    last = result[-1]
    if len(last["blocks"]) < MAX_BLOCKS:
        last["blocks"] = [*last["blocks"], note]
    else:
        result.append({"text": last["text"], "blocks": [note]})
    return result
