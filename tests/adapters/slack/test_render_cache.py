"""SlackAdapter.render: a digest fanned out to many channels is rendered once."""

from __future__ import annotations

from dataclasses import replace

from adapters.slack import SlackAdapter
from adapters.slack import adapter as adapter_module
from bot.models import Reply, ReplyKind
from tests.adapters.slack.conftest import CARDS


def make() -> SlackAdapter:
    return SlackAdapter(bot_token="xoxb-test", app_token="xapp-test", api_url="http://x/api/")


def digest(title: str = "Trending papers — Sat 21 Nov 2026", n: int = 10) -> Reply:
    return Reply(title=title, cards=CARDS[:n], ephemeral=False, kind=ReplyKind.DIGEST)


def count_renders(monkeypatch) -> list[Reply]:
    seen: list[Reply] = []
    original = adapter_module.render_digest

    def counting(reply, limits):
        seen.append(reply)
        return original(reply, limits)

    monkeypatch.setattr(adapter_module, "render_digest", counting)
    return seen


def test_equal_digests_are_rendered_once(monkeypatch) -> None:
    renders = count_renders(monkeypatch)
    slack = make()
    first = slack.render(digest())
    again = slack.render(digest())  # an equal Reply, not the same object
    assert again is first and len(renders) == 1
    messages, threaded = first
    assert threaded and len(messages) == 2


def test_different_digests_do_not_collide(monkeypatch) -> None:
    renders = count_renders(monkeypatch)
    slack = make()
    base = digest()
    variants = [
        base,
        digest(title="Trending papers — Sun 22 Nov 2026"),
        digest(n=9),
        replace(base, cards=(replace(CARDS[0], title="Another title"), *CARDS[1:10])),
        replace(base, footer="…and more"),
    ]
    rendered = [slack.render(v) for v in variants]
    assert len(renders) == len(variants)
    assert len({repr(r) for r in rendered}) == len(variants)
    assert "Another title" in repr(rendered[3]) and "Another title" not in repr(rendered[0])


def test_other_kinds_are_cached_too_and_the_cache_is_bounded(monkeypatch) -> None:
    slack = make()
    alert = Reply(title="Alert", cards=CARDS[:2], ephemeral=False, kind=ReplyKind.ALERT)
    messages, threaded = slack.render(alert)
    assert not threaded and slack.render(alert)[0] is messages
    for i in range(adapter_module.RENDER_CACHE_SIZE + 5):
        slack.render(digest(title=f"Digest {i}", n=4))
    assert len(slack._rendered) == adapter_module.RENDER_CACHE_SIZE
