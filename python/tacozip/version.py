"""Version information for tacozip."""

__version__ = "1.0.0"
