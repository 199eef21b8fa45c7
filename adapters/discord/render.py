"""Reply -> Discord message payloads (content, embeds, buttons). Pure functions, no network.

A reply becomes one or more messages: the title and text as message content, one embed
per paper card, and the reply's buttons under the last message. Discord's limits
(see ``LIMITS``) are enforced here: text is cut at word boundaries, oversized replies are
split into several messages, and no card is ever dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from discord.utils import escape_markdown

from adapters.discord.buttons import COPY_CUSTOM_ID, MAX_BUTTON_LABEL_CHARS, encode_custom_id
from bot.models import AdapterLimits, Button, Card, Reply, ReplyKind, shorten

# Discord's documented limits (message content, embeds, components).
MAX_CONTENT_CHARS = 2000
MAX_EMBEDS_PER_MESSAGE = 10
MAX_EMBED_TOTAL_CHARS = 6000  # across all embeds of one message
MAX_EMBED_TITLE_CHARS = 256
MAX_EMBED_DESCRIPTION_CHARS = 4096
MAX_EMBED_FIELDS = 25
MAX_FIELD_NAME_CHARS = 256
MAX_FIELD_VALUE_CHARS = 1024
MAX_FOOTER_CHARS = 2048
MAX_AUTHOR_CHARS = 256
MAX_URL_CHARS = 2048
MAX_BUTTONS_PER_ROW = 5
MAX_ACTION_ROWS = 5

# Our own budget per card, well under Discord's, so one message holds several cards;
# a reply of one card (`/papers paper`) gets more, still well under the 4,096 and 6,000.
CARD_SUMMARY_CHARS = 700
SINGLE_CARD_SUMMARY_CHARS = 2000
CARD_AUTHORS_CHARS = 200

FLAG_SUPPRESS_EMBEDS = 1 << 2
FLAG_EPHEMERAL = 1 << 6
EMBED_COLOUR = 0xFFD21E  # Hugging Face yellow
BUTTON_STYLE_PRIMARY = 1
BUTTON_STYLE_SECONDARY = 2

LIMITS = AdapterLimits(
    max_cards_per_message=MAX_EMBEDS_PER_MESSAGE,
    max_text_chars=MAX_CONTENT_CHARS,
    max_title_chars=MAX_EMBED_TITLE_CHARS,
    max_summary_chars=350,
    messages_per_second_per_channel=None,  # discord.py follows the per-route buckets
    supports_threads=False,
    supports_ephemeral=True,
    supports_buttons=True,
)

_URL = re.compile(r"(?<![<(])\bhttps?://[^\s<>]+")
_WELL_FORMED_URL = re.compile(r"^https?://[^\s<>\"]+$")


@dataclass(frozen=True, slots=True)
class DiscordMessage:
    """One message to send: ``content`` (markdown), embed dicts, button rows, flags."""

    content: str = ""
    embeds: tuple[dict[str, Any], ...] = ()
    components: tuple[dict[str, Any], ...] = ()
    flags: int = 0
    cards: tuple[str, ...] = field(default=(), compare=False)  # paper ids, for tests and logs

    def to_json(self, *, nonce: str | None = None) -> dict[str, Any]:
        """The REST body for ``POST /channels/{id}/messages`` (or a webhook execute)."""
        body: dict[str, Any] = {
            "content": self.content,
            "embeds": list(self.embeds),
            "components": list(self.components),
            "allowed_mentions": {"parse": []},  # a paper title never pings anyone
        }
        if self.flags:
            body["flags"] = self.flags
        if nonce is not None:
            body["nonce"] = nonce
            body["enforce_nonce"] = True
        return body


def embed_length(embed: dict[str, Any]) -> int:
    """Characters Discord counts toward the 6,000 per-message total for one embed."""
    total = len(embed.get("title", "")) + len(embed.get("description", ""))
    total += len(embed.get("footer", {}).get("text", ""))
    total += len(embed.get("author", {}).get("name", ""))
    for item in embed.get("fields", ()):
        total += len(item["name"]) + len(item["value"])
    return total


def escape_text(text: str) -> str:
    """Plain text as Discord markdown: specials escaped, bare links kept from unfurling."""
    escaped = escape_markdown(text, ignore_links=True)
    return _URL.sub(lambda m: f"<{m.group(0)}>", escaped)


def fit(text: str, limit: int, *, markdown: bool = True) -> str:
    """``text`` escaped (when ``markdown``) and shortened so the result is at most ``limit``."""
    text = " ".join(text.split())
    budget = limit
    while True:
        cut = shorten(text, budget)
        result = escape_markdown(cut, ignore_links=True) if markdown else cut
        if len(result) <= limit:
            return result
        budget -= max(1, len(result) - limit)


def safe_url(url: str | None) -> str | None:
    """A URL Discord accepts in an embed or markdown link, or ``None``."""
    if not url:
        return None
    url = quote(url.strip(), safe=":/?#[]@!$&'*+,;=%~")
    if len(url) > MAX_URL_CHARS or not _WELL_FORMED_URL.match(url):
        return None
    return url


def _authors_line(authors: tuple[str, ...]) -> str:
    if not authors:
        return ""
    shown: list[str] = []
    for index, name in enumerate(authors):
        rest = len(authors) - index
        candidate = ", ".join([*shown, name])
        suffix = f" +{rest - 1} more" if rest > 1 else ""
        if len(candidate) + len(suffix) > CARD_AUTHORS_CHARS:
            break
        shown.append(name)
    hidden = len(authors) - len(shown)
    line = ", ".join(shown) + (f" +{hidden} more" if hidden else "")
    return shorten(line, MAX_AUTHOR_CHARS) if shown else f"{len(authors)} authors"


def card_embed(
    card: Card, *, number: int | None = None, summary_chars: int = CARD_SUMMARY_CHARS
) -> dict[str, Any]:
    """One paper as an embed: linked title, authors, summary, counts, links, thumbnail."""
    prefix = f"{number}. " if number is not None else ""
    title = fit(card.title, MAX_EMBED_TITLE_CHARS - len(prefix)) or fit(card.paper_id, 100)
    embed: dict[str, Any] = {"title": prefix + (title or "(untitled)"), "color": EMBED_COLOUR}
    if url := safe_url(card.url):
        embed["url"] = url
    if authors := _authors_line(card.authors):
        embed["author"] = {"name": authors}
    if summary := fit(card.summary, summary_chars):
        embed["description"] = summary
    fields: list[dict[str, Any]] = []
    stats = []
    if card.upvotes is not None:
        stats.append(f"▲ {card.upvotes} upvote{'' if card.upvotes == 1 else 's'}")
    if card.comments is not None:
        stats.append(f"💬 {card.comments} comment{'' if card.comments == 1 else 's'}")
    if stats:
        fields.append({"name": "Activity", "value": " · ".join(stats), "inline": True})
    if links := _links_value(card):
        fields.append({"name": "Links", "value": links, "inline": True})
    if fields:
        embed["fields"] = fields
    if thumbnail := safe_url(card.thumbnail):
        embed["thumbnail"] = {"url": thumbnail}
    footer = [card.paper_id]
    if card.published:
        footer.append(f"{card.published.day} {card.published:%b %Y}")
    if card.keywords:
        footer.append(", ".join(card.keywords[:5]))
    embed["footer"] = {"text": shorten(" · ".join(footer), 300)}
    return embed


def _links_value(card: Card) -> str:
    links: list[str] = []
    for label, url in (  # the paper page itself is the embed title's link
        ("arXiv", card.arxiv_url),
        ("Code", card.github),
        ("Project", card.project_page),
    ):
        safe = safe_url(url)
        if safe is None or (label == "arXiv" and safe == safe_url(card.url)):
            continue
        text = f"[{label}]({safe.replace(')', '%29')})"
        if label == "Code" and card.github_stars:
            text += f" ★ {card.github_stars}"
        if sum(len(x) + 3 for x in links) + len(text) <= MAX_FIELD_VALUE_CHARS:
            links.append(text)
    return " · ".join(links)


def split_text(text: str, limit: int = MAX_CONTENT_CHARS) -> list[str]:
    """``text`` in chunks of at most ``limit``, cut at line breaks, else spaces."""
    chunks: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        cut = rest.rfind("\n", 0, limit + 1)
        if cut <= limit // 2:
            cut = rest.rfind(" ", 0, limit + 1)
        if cut <= limit // 2:
            cut = limit
            # never split inside an escape sequence or a <link>
            while cut > limit // 2 and rest[cut - 1] in "\\<":
                cut -= 1
        chunks.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        chunks.append(rest)
    return chunks


def pack_embeds(embeds: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Group embeds in order into messages of at most 10 embeds and 6,000 characters."""
    batches: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    size = 0
    for embed in embeds:
        length = embed_length(embed)
        if current and (
            len(current) == MAX_EMBEDS_PER_MESSAGE or size + length > MAX_EMBED_TOTAL_CHARS
        ):
            batches.append(current)
            current, size = [], 0
        current.append(embed)
        size += length
    if current:
        batches.append(current)
    return batches


def _button_item(button: Button, *, copy_ok: bool) -> dict[str, Any] | None:
    custom_id = encode_custom_id(button)
    if custom_id is None or (custom_id == COPY_CUSTOM_ID and not copy_ok):
        return None
    return {
        "type": 2,
        "style": BUTTON_STYLE_PRIMARY if button.share else BUTTON_STYLE_SECONDARY,
        "label": shorten(button.label, MAX_BUTTON_LABEL_CHARS) or "…",
        "custom_id": custom_id,
    }


def _rows(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"type": 1, "components": items[i : i + MAX_BUTTONS_PER_ROW]}
        for i in range(0, len(items), MAX_BUTTONS_PER_ROW)
    ]


def button_rows(
    buttons: tuple[Button, ...], *, copy_ok: bool = True, cards: tuple[Card, ...] = ()
) -> tuple[dict[str, Any], ...]:
    """Rows of up to 5 buttons (5 rows at most): the ``cards``' own buttons (each
    labelled with its card's title), then ``buttons`` in the last rows. Buttons that
    cannot be encoded are left out, and card buttons that do not fit.

    ``copy_ok=False``: the reply spans several messages, so a share button that could only
    copy the message it sits on (its command too long for a custom id) is left out too.
    """
    tail = [item for b in buttons if (item := _button_item(b, copy_ok=copy_ok)) is not None]
    tail = tail[: MAX_BUTTONS_PER_ROW * MAX_ACTION_ROWS]
    tail_rows = -(-len(tail) // MAX_BUTTONS_PER_ROW)
    card_items = [
        item
        for card in cards
        for action in card.actions
        if (
            item := _button_item(
                Button(f"{action.label}: {card.title}", action.command), copy_ok=False
            )
        )
        is not None
    ]
    card_items = card_items[: MAX_BUTTONS_PER_ROW * (MAX_ACTION_ROWS - tail_rows)]
    return tuple(_rows(card_items) + _rows(tail))


def render_reply(reply: Reply, *, in_channel: bool = False) -> list[DiscordMessage]:
    """The messages that show ``reply``, in order, each within Discord's limits.

    ``in_channel`` drops "share" buttons (the reply is already visible to everyone).
    """
    head = []
    if reply.title:
        head.append(f"**{fit(reply.title, 250)}**")
    if reply.text:
        head.append(escape_text(reply.text))
    if reply.footer:  # small print under the heading, before the cards
        head.append(f"-# {fit(reply.footer, 500)}")
    head_chunks = split_text("\n".join(head))

    numbered = reply.kind in (ReplyKind.DIGEST, ReplyKind.ALERT)
    budget = SINGLE_CARD_SUMMARY_CHARS if len(reply.cards) == 1 else CARD_SUMMARY_CHARS
    embeds = [
        card_embed(card, number=index if numbered else None, summary_chars=budget)
        for index, card in enumerate(reply.cards, start=reply.first_number)
    ]
    batches = pack_embeds(embeds)

    drafts: list[tuple[str, list[dict[str, Any]]]] = [(chunk, []) for chunk in head_chunks]
    for batch in batches:
        if drafts and not drafts[-1][1]:
            drafts[-1] = (drafts[-1][0], batch)
        else:
            drafts.append(("", batch))
    if not drafts:
        drafts.append(("(nothing to show)", []))

    buttons = tuple(b for b in reply.buttons if not (in_channel and b.share))
    copy_ok = len(drafts) == 1
    messages = []
    position = 0
    for index, (content, batch) in enumerate(drafts):
        cards = reply.cards[position : position + len(batch)]
        position += len(batch)
        last = index == len(drafts) - 1
        messages.append(
            DiscordMessage(
                content=content,
                embeds=tuple(batch),
                components=button_rows(buttons if last else (), copy_ok=copy_ok, cards=cards),
                # plain text: no link previews; never on embed messages (it would hide them)
                flags=0 if batch else FLAG_SUPPRESS_EMBEDS,
                cards=tuple(card.paper_id for card in cards),
            )
        )
    return messages
