"""Discord: ``/papers`` application commands, embed digests, nonce-safe posting."""

from adapters.discord.adapter import DiscordAdapter

__all__ = ["DiscordAdapter"]
