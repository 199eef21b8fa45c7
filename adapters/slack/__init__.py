"""paperboy's Slack adapter: bolt (Socket Mode or HTTP), Block Kit rendering, posting."""

from adapters.slack.adapter import SlackAdapter

__all__ = ["SlackAdapter"]
