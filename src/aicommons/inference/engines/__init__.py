"""Engines: a small module per backend (transformers LM, transformers encoders, vLLM)."""
