"""Reply -> rich renderables for a terminal. Pure: no I/O here."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.markup import escape
from rich.padding import Padding
from rich.rule import Rule
from rich.text import Text

from bot.models import Card, Reply, ReplyKind

MAX_AUTHORS = 4


def authors_line(authors: tuple[str, ...], *, limit: int = MAX_AUTHORS) -> str:
    if len(authors) <= limit:
        return ", ".join(authors)
    return ", ".join(authors[:limit]) + f", +{len(authors) - limit} more"


def render_card(card: Card, number: int | None = None) -> RenderableType:
    head = Text()
    if number is not None:
        head.append(f"{number:>2}. ", style="bold")
    head.append(card.title, style=f"bold link {card.url}")
    stats = []
    if card.upvotes is not None:
        stats.append(f"▲ {card.upvotes}")
    if card.comments:
        stats.append(f"💬 {card.comments}")
    if stats:
        head.append("  " + "  ".join(stats), style="yellow")
    lines: list[RenderableType] = [head]
    meta = [authors_line(card.authors)] if card.authors else []
    if card.published:
        meta.append(card.published.isoformat())
    if meta:
        lines.append(Text("    " + " · ".join(meta), style="dim"))
    if card.summary:  # a whole abstract (``/papers paper``) wraps under the indent too
        lines.append(Padding(Text(card.summary), (0, 0, 0, 4)))
    links = [card.url]
    if card.github:
        stars = f" ★{card.github_stars}" if card.github_stars else ""
        links.append(f"code {card.github}{stars}")
    if card.project_page:
        links.append(f"project {card.project_page}")
    lines.append(Text("    " + " · ".join(links), style="cyan"))
    if card.actions:  # typed rather than clicked here: show the command each one runs
        hints = " · ".join(f"{a.label.lower()}: /papers {a.command}" for a in card.actions)
        lines.append(Text("    " + hints, style="dim"))
    return Group(*lines)


def render_reply(reply: Reply) -> list[RenderableType]:
    """The reply as a list of renderables: heading, text, numbered cards, hints."""
    out: list[RenderableType] = []
    # One paper (``/papers paper``): its card shows the title in full, linked; a rule
    # would only repeat it, cut short to the terminal's width.
    single = len(reply.cards) == 1 and reply.cards[0].title == reply.title
    if reply.title and not single:
        style = "bold red" if reply.kind is ReplyKind.ERROR else "bold magenta"
        out.append(Rule(Text(reply.title, style=style), align="left"))
    if reply.text:
        out.append(Text(reply.text, style="red" if reply.kind is ReplyKind.ERROR else ""))
    numbered = reply.kind is ReplyKind.DIGEST or len(reply.cards) > 1
    for i, card in enumerate(reply.cards, start=reply.first_number):
        out.append(render_card(card, i if numbered else None))
    if reply.footer:
        out.append(Text(reply.footer, style="dim"))
    for button in reply.buttons:
        if not button.share:
            out.append(
                Text.from_markup(
                    f"[dim]{escape(button.label)}: /papers {escape(button.command)}[/]"
                )
            )
    return out
