"""One blueprint per API family."""

from . import docs, native, ollama, openai, ops, rerank

BLUEPRINTS = (ops.bp, docs.bp, native.bp, openai.bp, ollama.bp, rerank.bp)
