"""encore: preference-tuned playlist-generation LLMs, from logged feedback to a registered model."""

__version__ = "0.1.0"
