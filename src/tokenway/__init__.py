"""tokenway: an LLM-aware inference gateway and platform toolkit."""

__version__ = "0.1.0"
