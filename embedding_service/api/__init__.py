"""One blueprint per API family."""

from . import cohere, docs, native, ollama, ollama_catalogue, openai, ops, rerank, tei

BLUEPRINTS = (ops.bp, docs.bp, native.bp, tei.bp, openai.bp, ollama.bp, ollama_catalogue.bp, rerank.bp, cohere.bp)
