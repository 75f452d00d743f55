"""One blueprint per API family."""

from . import native, ollama, openai, ops

BLUEPRINTS = (ops.bp, native.bp, openai.bp, ollama.bp)
