"""Terminal adapter: rich output, ``/papers`` commands read from stdin."""

from adapters.console.adapter import CONSOLE_DESTINATION, ConsoleAdapter

__all__ = ["CONSOLE_DESTINATION", "ConsoleAdapter"]
