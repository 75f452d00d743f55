"""One blueprint per API family."""

from . import native, ollama, openai, ops, rerank

BLUEPRINTS = (ops.bp, native.bp, openai.bp, ollama.bp, rerank.bp)
