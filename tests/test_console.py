"""The console adapter driven end to end: real app, real store, fake Hugging Face."""

import asyncio
import io
import os
from datetime import UTC, datetime

import pytest
from rich.console import Console

from adapters.console import ConsoleAdapter
from bot.app import Paperboy
from bot.config import Settings
from bot.models import Reply, ReplyKind
from bot.sources.huggingface import HuggingFaceSource
from tests.fakes.huggingface import make_item
from tests.fakes.tiny_model import MODEL_NAME, build_tiny_model


@pytest.fixture(autouse=True)
def no_paperboy_environment(monkeypatch):
    """``_env_file=None`` skips .env, not the process environment: drop PAPERBOY_* (and
    HF_TOKEN) so a developer's or CI's settings cannot change these tests."""
    for name in list(os.environ):
        if name.upper().startswith(("PAPERBOY_", "HF_TOKEN")):
            monkeypatch.delenv(name)


def _settings(tmp_path, hf_url, **settings):
    settings.setdefault("semantic_search", False)
    return Settings(
        _env_file=None,
        data_dir=tmp_path,
        hf_api_url=hf_url,
        remote_search=False,
        http_timeout=2,
        **settings,
    )


async def test_console_prints_the_digest_and_answers_commands(tmp_path, fake_hf):
    today = datetime.now(UTC).date()
    fake_hf.add_items(
        [
            make_item("2611.00001", "Diffusion Forcing for Video", day=today, upvotes=12),
            make_item("2611.00002", "Sparse Mixture of Experts Revisited", day=today, upvotes=50),
        ]
    )
    screen = io.StringIO()
    console = Console(file=screen, width=200, color_system=None)
    app_ready: asyncio.Future[Paperboy] = asyncio.get_running_loop().create_future()

    async def typed_lines():
        bot = await app_ready
        await bot.polled.wait()  # type once the first poll has landed
        for line in ("/papers search diffusion", "paper 2611.00002", "frobnicate", "quit"):
            yield line

    adapter = ConsoleAdapter(console=console, lines=typed_lines())
    async with Paperboy(_settings(tmp_path, fake_hf.url), adapters=[adapter]) as bot:
        app_ready.set_result(bot)
        await asyncio.wait_for(bot.run(), timeout=30)

    text = screen.getvalue()
    digest_at = text.index(f"Trending papers — {today:%a %d %b %Y}")
    assert text.index("Sparse Mixture of Experts Revisited") > digest_at
    assert text.index("Sparse Mixture") < text.index("Diffusion Forcing")  # by upvotes
    assert "Search: diffusion" in text
    assert "https://huggingface.co/papers/2611.00001" in text
    assert "Unknown command `frobnicate`" in text
    assert fake_hf.requests_to("/api/daily_papers")


class ScreenPerReply(ConsoleAdapter):
    """A console that keeps what each reply printed, and says when the digest is out."""

    def __init__(self, screen: io.StringIO, **kwargs) -> None:
        super().__init__(console=Console(file=screen, width=60, color_system=None), **kwargs)
        self.screen = screen
        self.printed: list[str] = []
        self.digest_shown = asyncio.Event()

    def show(self, reply: Reply) -> None:
        start = len(self.screen.getvalue())
        super().show(reply)
        if reply.kind is ReplyKind.DIGEST:
            self.digest_shown.set()
        else:
            self.printed.append(self.screen.getvalue()[start:])


async def test_console_replies_read_cleanly(tmp_path, fake_hf):
    """One paper: its title once, in full, and its whole abstract; an unknown command on
    its own line, short and with control characters escaped; /PAPERS in capitals."""
    today = datetime.now(UTC).date()
    title = "A Remarkably Long Title About Sparse Mixtures of Experts That Does Not Fit"
    abstract = " ".join(f"Sentence {n} says a little more about the method." for n in range(12))
    fake_hf.add_items(
        [make_item("2611.00002", title, day=today, summary=abstract, ai_summary="Short AI tl;dr.")]
    )

    async def typed_lines():
        await adapter.digest_shown.wait()
        yield "/papers paper 2611.00002"
        yield "/PAPERS bogus" + "z" * 5000
        yield "/papers \x03\x04"
        yield "quit"

    adapter = ScreenPerReply(io.StringIO(), lines=typed_lines())
    async with Paperboy(_settings(tmp_path, fake_hf.url), adapters=[adapter]) as bot:
        await asyncio.wait_for(bot.run(), timeout=30)

    one_paper, unknown, control = adapter.printed
    flat = " ".join(one_paper.split())
    assert flat.count("A Remarkably Long Title") == 1 and title in flat
    assert "…" not in one_paper
    assert "Sentence 11 says a little more about the method." in flat
    first, second = unknown.splitlines()[1:3]  # under the help's heading
    assert first.startswith("Unknown command `boguszzz") and len(first) <= 60
    assert second.startswith("/papers today")
    assert control.splitlines()[1] == "Unknown command `\\x03\\x04`."
    assert "\x03" not in control


async def test_new_papers_are_embedded_and_similar_ones_found_by_meaning(tmp_path, fake_hf):
    """The whole semantic path in the running bot: the model (tests' tiny one) loads, the
    poll's papers are embedded in the background, and `similar` then ranks by meaning."""
    today = datetime.now(UTC).date()
    fake_hf.add_items(
        [
            make_item("2611.00001", "Deraining networks", day=today, summary="Rain streaks."),
            make_item("2611.00002", "Image restoration", day=today, summary="Photos restored."),
            make_item("2611.00003", "Cats on the internet", day=today, summary="A kitten."),
        ]
    )
    model = build_tiny_model(tmp_path / "model")

    async def typed_lines():
        bot = await app_ready
        await bot.polled.wait()
        async with asyncio.timeout(20):
            while not bot.search.semantic.usable:  # the leader embeds after the poll
                await bot.search.follow_once()
                await asyncio.sleep(0.05)
        yield "similar 2611.00001"
        yield "quit"

    app_ready: asyncio.Future[Paperboy] = asyncio.get_running_loop().create_future()
    adapter = ScreenPerReply(io.StringIO(), lines=typed_lines())
    settings = _settings(
        tmp_path,
        fake_hf.url,
        semantic_search=True,
        embedding_model=MODEL_NAME,
        embedding_model_path=model,
    )
    async with Paperboy(settings, adapters=[adapter]) as bot:
        app_ready.set_result(bot)
        await asyncio.wait_for(bot.run(), timeout=30)

    [similar] = adapter.printed
    flat = " ".join(similar.split())
    assert flat.index("Image restoration") < flat.index("Cats on the internet")
    assert "words of its title" not in flat  # found by meaning
    assert "similar: /papers similar 2611.00002" in flat  # each card says how to go on


async def test_console_keeps_answering_when_hugging_face_is_down(tmp_path, fake_hf):
    fake_hf.fail_next("*", status=503, times=1000)
    screen = io.StringIO()
    console = Console(file=screen, width=200, color_system=None)

    async def typed_lines():
        yield "help"
        yield "today"
        yield "quit"

    adapter = ConsoleAdapter(console=console, lines=typed_lines())
    source = HuggingFaceSource(fake_hf.url, sleep=_no_sleep, max_attempts=2)
    async with Paperboy(_settings(tmp_path, fake_hf.url), adapters=[adapter], source=source) as bot:
        await asyncio.wait_for(bot.run(), timeout=30)
    text = screen.getvalue()
    assert "/papers search" in text
    assert "No papers have been fetched yet" in text


async def _no_sleep(_seconds: float) -> None:
    return None


def test_numbered_cards_start_at_the_reply_s_first_number():
    from rich.console import Console

    from adapters.console.render import render_reply
    from bot.models import Card, Reply

    cards = tuple(
        Card(paper_id=f"p{i}", title=f"Title {i}", url=f"https://x/{i}") for i in range(3)
    )
    screen = Console(file=io.StringIO(), width=80)
    for renderable in render_reply(Reply(cards=cards, first_number=6, footer="Papers 6–8")):
        screen.print(renderable)
    numbers = [line.split(".")[0].strip() for line in screen.file.getvalue().splitlines()[::2]]
    assert numbers[:3] == ["6", "7", "8"]
