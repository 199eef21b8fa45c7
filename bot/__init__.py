"""paperboy: the day's trending machine-learning papers, delivered to chat."""

__version__ = "0.1.0"
