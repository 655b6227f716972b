"""AI Commons: an open, self-hostable hub for AI models, datasets and tools."""

__version__ = "0.1.0"
