"""The platform-neutral model shared by the core and every adapter.

Plain dataclasses on purpose: this module is imported everywhere (adapters, store,
commands) and must stay cheap to import. Validation of outside data happens at the
edges (``bot.sources``, ``bot.config``), never here.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum

HF_PAPER_URL = "https://huggingface.co/papers/{id}"
ARXIV_ABS_URL = "https://arxiv.org/abs/{id}"

_ARXIV_ID = re.compile(r"^(?:\d{4}\.\d{4,5}|[a-z\-]+(?:\.[A-Z]{2})?/\d{7})\Z")
_ARXIV_VERSION = re.compile(r"v\d+\Z")
_SCHEME = re.compile(r"^https?://", re.IGNORECASE)
_PAPER_PAGE = re.compile(
    r"^(?:(?:www\.|export\.)?arxiv\.org/(?:abs|pdf|html)/|(?:www\.)?huggingface\.co/papers/)",
    re.IGNORECASE,
)
_ARXIV_PREFIX = re.compile(r"^arxiv:", re.IGNORECASE)


def normalize_paper_id(raw: str) -> str:
    """The version-less id of a paper: ``2401.01234v2`` -> ``2401.01234``.

    Accepts ids with an ``arXiv:`` prefix and arXiv or Hugging Face URLs; ids of other
    sources are returned stripped but otherwise untouched.
    """
    text = _SCHEME.sub("", raw.strip(), count=1)
    text = _PAPER_PAGE.sub("", text, count=1)
    text = _ARXIV_PREFIX.sub("", text, count=1)
    text = text.split("?", 1)[0].split("#", 1)[0].rstrip("/").strip()
    if text.lower().endswith(".pdf"):
        text = text[:-4]
    candidate = _ARXIV_VERSION.sub("", text)
    return candidate if _ARXIV_ID.match(candidate) else text


def is_arxiv_id(paper_id: str) -> bool:
    """Whether ``paper_id`` looks like a version-less arXiv identifier."""
    return bool(_ARXIV_ID.match(paper_id))


@dataclass(frozen=True, slots=True)
class Author:
    """One author as the source lists them."""

    name: str


@dataclass(slots=True)
class Paper:
    """One paper. ``id`` is the arXiv id without version (other sources: their own id).

    Optional fields are ``None`` when the source did not say; the store never lets a
    missing value erase a known one.
    """

    id: str
    title: str
    abstract: str = ""
    authors: tuple[Author, ...] = ()
    published_at: datetime | None = None  # on arXiv
    submitted_at: datetime | None = None  # added to Hugging Face Daily Papers
    upvotes: int | None = None
    comments: int | None = None
    ai_summary: str | None = None
    ai_keywords: tuple[str, ...] = ()
    github_repo: str | None = None
    github_stars: int | None = None
    project_page: str | None = None
    thumbnail: str | None = None
    organization: str | None = None
    sources: tuple[str, ...] = ()
    first_seen_at: datetime | None = None
    last_seen_at: datetime | None = None

    @property
    def url(self) -> str:
        """The page people should open: Hugging Face when it knows the paper, else arXiv."""
        if "huggingface" in self.sources or not is_arxiv_id(self.id):
            return HF_PAPER_URL.format(id=self.id)
        return ARXIV_ABS_URL.format(id=self.id)

    @property
    def arxiv_url(self) -> str | None:
        return ARXIV_ABS_URL.format(id=self.id) if is_arxiv_id(self.id) else None

    @property
    def author_names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.authors)


class Platform(StrEnum):
    CONSOLE = "console"
    SLACK = "slack"
    DISCORD = "discord"


@dataclass(frozen=True, slots=True)
class Destination:
    """Where a message goes: a channel, or a user's direct messages when ``is_dm``.

    ``workspace`` is the Slack team id or Discord guild id ("" where there is none).
    """

    platform: str
    workspace: str
    channel: str
    is_dm: bool = False

    @property
    def key(self) -> str:
        kind = "dm" if self.is_dm else "ch"
        return f"{self.platform}:{self.workspace}:{kind}:{self.channel}"


class DigestDays(StrEnum):
    WEEKDAYS = "weekdays"
    DAILY = "daily"


class DigestFormat(StrEnum):
    COMPACT = "compact"
    FULL = "full"


# Papers in one digest at most: a Slack thread of 25 full cards, 3 Discord messages.
MAX_DIGEST_TOP = 25


@dataclass(slots=True)
class Subscription:
    """A channel's daily digest: when, how many, which papers."""

    destination: Destination
    at: str = "09:00"  # HH:MM in ``timezone``
    timezone: str = "UTC"
    days: DigestDays = DigestDays.WEEKDAYS
    top: int = 10
    min_upvotes: int = 0
    topic: str | None = None
    format: DigestFormat = DigestFormat.FULL
    post_empty: bool = False  # post a one-line "no new papers" on empty days
    include_arxiv: bool = False  # also new arXiv papers of the watched categories
    id: int | None = None
    created_by: str | None = None
    paused_reason: str | None = None
    origin: str = "command"  # "command" (/papers subscribe) or "config" (PAPERBOY_DIGESTS)
    last_slot: datetime | None = None  # when the previous digest was scheduled
    created_at: datetime | None = None  # when the channel subscribed (stored: set by the store)


@dataclass(slots=True)
class Watch:
    """A standing query: alert ``destination`` when a new paper matches ``query``."""

    owner: str
    destination: Destination
    query: str
    id: int | None = None
    created_at: datetime | None = None
    paused_reason: str | None = None  # why alerts stopped (the destination refused them)


@dataclass(frozen=True, slots=True)
class Card:
    """A paper as shown in chat; adapters render it as Block Kit, an embed or rich text."""

    paper_id: str
    title: str
    url: str
    authors: tuple[str, ...] = ()
    summary: str = ""
    upvotes: int | None = None
    comments: int | None = None
    github: str | None = None
    github_stars: int | None = None
    project_page: str | None = None
    thumbnail: str | None = None
    keywords: tuple[str, ...] = ()
    published: date | None = None
    arxiv_url: str | None = None
    actions: tuple[Button, ...] = ()  # offered on the card itself, e.g. "Similar"

    @classmethod
    def from_paper(cls, paper: Paper) -> Card:
        listed = paper.submitted_at or paper.published_at
        return cls(
            paper_id=paper.id,
            title=paper.title,
            url=paper.url,
            authors=paper.author_names,
            summary=short_summary(paper),
            upvotes=paper.upvotes,
            comments=paper.comments,
            github=paper.github_repo,
            github_stars=paper.github_stars,
            project_page=paper.project_page,
            thumbnail=paper.thumbnail,
            keywords=paper.ai_keywords,
            published=listed.date() if listed else None,
            arxiv_url=paper.arxiv_url,
            actions=(Button("Similar", f"similar {paper.id}"),),
        )


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def short_summary(paper: Paper, *, max_chars: int = 300) -> str:
    """One or two sentences: the AI summary when present, else the abstract's start."""
    text = " ".join((paper.ai_summary or paper.abstract or "").split())
    if len(text) <= max_chars:
        return text
    picked = ""
    for sentence in _SENTENCE_END.split(text)[:2]:
        candidate = f"{picked} {sentence}".strip()
        if len(candidate) > max_chars:
            break
        picked = candidate
    return picked or shorten(text, max_chars)


def shorten(text: str, max_chars: int, *, ellipsis: str = "…") -> str:
    """``text`` cut at a word boundary so that the result is at most ``max_chars`` long.

    Never cuts between the halves of a surrogate pair or off a character's combining marks,
    joiners or emoji modifiers; without room for ``ellipsis`` the cut gets none.
    """
    if max_chars <= 0:
        return ""
    if len(text) <= max_chars:
        return text
    room = max_chars - len(ellipsis)
    if room < 0:
        return text[: _cut_point(text, max_chars)]
    cut = text[: _cut_point(text, room)]
    space = cut.rfind(" ")
    if space > max_chars // 2:
        cut = cut[:space]
    return cut.rstrip() + ellipsis


def _cut_point(text: str, end: int) -> int:
    """``end`` or earlier, so that ``text[:end]`` does not split a character."""
    while 0 < end < len(text) and _joined(text[end - 1], text[end]):
        end -= 1
    return end


def _joined(before: str, after: str) -> bool:
    """Whether ``before`` and ``after`` belong to one user-perceived character."""
    if "\ud800" <= before <= "\udbff" and "\udc00" <= after <= "\udfff":
        return True  # a surrogate pair (text decoded with "surrogatepass")
    if before == "\u200d" or after == "\u200d":
        return True  # zero-width joiner of an emoji sequence
    return (
        unicodedata.category(after) in ("Mn", "Mc", "Me")
        or "\ufe00" <= after <= "\ufe0f"  # variation selectors
        or "\U0001f3fb" <= after <= "\U0001f3ff"  # skin tones
        or "\U000e0020" <= after <= "\U000e007f"  # emoji tag sequences (flags)
    )


@dataclass(frozen=True, slots=True)
class Button:
    """An action offered under a reply; pressing it runs ``command`` for the presser."""

    label: str
    command: str  # a /papers command line, e.g. "search diffusion --page 2"
    share: bool = False  # re-post this reply in the channel for everyone


class ReplyKind(StrEnum):
    LOOKUP = "lookup"
    DIGEST = "digest"
    ALERT = "alert"
    HELP = "help"
    ERROR = "error"
    INFO = "info"


@dataclass(frozen=True, slots=True)
class Reply:
    """What the core answers, platform-neutral.

    ``title`` is a heading, ``text`` plain text (adapters escape it for their markup),
    ``cards`` one per paper. Adapters split a reply that exceeds their limits and never
    drop a card. ``first_number``: the number of the first card where cards are numbered
    (a later page goes on from the previous one).
    """

    text: str = ""
    cards: tuple[Card, ...] = ()
    title: str | None = None
    footer: str | None = None
    ephemeral: bool = True
    kind: ReplyKind = ReplyKind.LOOKUP
    buttons: tuple[Button, ...] = ()
    first_number: int = 1
    _hash: int | None = field(default=None, init=False, repr=False, compare=False)

    def __hash__(self) -> int:
        # Computed once: a digest fanned out to a thousand channels is looked up in the
        # adapters' render caches once per channel, and hashing walks every card.
        if self._hash is None:
            value = hash(
                (
                    self.text,
                    self.cards,
                    self.title,
                    self.footer,
                    self.ephemeral,
                    self.kind,
                    self.buttons,
                    self.first_number,
                )
            )
            object.__setattr__(self, "_hash", value)
            return value
        return self._hash


@dataclass(frozen=True, slots=True)
class CommandRequest:
    """What a ``/papers`` invocation means, whatever platform it came from.

    ``subcommand`` is lower-case ("" for a bare ``/papers``); ``args`` is the rest of the
    line, untouched.
    """

    subcommand: str
    args: str
    user: str
    destination: Destination
    can_manage_channel: bool = False
    user_name: str | None = None

    @classmethod
    def from_text(cls, text: str, **kwargs: object) -> CommandRequest:
        """Build a request from a command line such as ``search "state space" --limit 5``."""
        stripped = text.strip()
        command, *after = stripped.split(None, 1) or [""]
        if command.lower() == "/papers":  # /PAPERS on caps lock too; not /papersearch
            stripped = after[0].strip() if after else ""
        head, rest = (stripped.split(None, 1) + ["", ""])[:2]  # any whitespace: tab, newline
        return cls(subcommand=head.lower(), args=rest.strip(), **kwargs)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class AdapterLimits:
    """What a platform accepts in one message; the adapter enforces it when rendering.

    Declared by each adapter so the core never asks which platform it talks to.
    """

    max_cards_per_message: int
    max_text_chars: int
    max_title_chars: int = 256
    max_summary_chars: int = 300
    messages_per_second_per_channel: float | None = None
    supports_threads: bool = False
    supports_ephemeral: bool = False
    supports_buttons: bool = False


class PostStatus(StrEnum):
    SENT = "sent"
    RETRY = "retry"  # transient failure (5xx, rate limited past our patience): try again later
    UNKNOWN = "unknown"  # timed out: the message may or may not exist; reconcile first
    GONE = "gone"  # channel deleted, archived, or the bot was removed
    FORBIDDEN = "forbidden"  # missing permission
    AUTH = "auth"  # token revoked or invalid
    FAILED = "failed"  # rejected for good (bad payload); do not retry


@dataclass(frozen=True, slots=True)
class PostResult:
    """The outcome of ``ChatAdapter.post``: never an exception for platform errors."""

    status: PostStatus
    message_ids: tuple[str, ...] = ()
    error: str | None = None
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.status is PostStatus.SENT


def utcnow() -> datetime:
    return datetime.now(UTC)


__all__ = [
    "AdapterLimits",
    "Author",
    "Button",
    "Card",
    "CommandRequest",
    "Destination",
    "DigestDays",
    "DigestFormat",
    "Paper",
    "Platform",
    "PostResult",
    "PostStatus",
    "Reply",
    "ReplyKind",
    "Subscription",
    "Watch",
    "is_arxiv_id",
    "normalize_paper_id",
    "short_summary",
    "shorten",
    "utcnow",
]
