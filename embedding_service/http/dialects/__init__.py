"""The API dialects, one folder each (routes, request schemas, response models): `openai`,
`tei`, `ollama`, `cohere`, `vllm`, `native` (the service's own retrieval routes), `siglip` (the
SigLIP service's API) and `ops` (health, readiness,
info, metrics, the OpenAPI document and its Swagger UI)."""

from .cohere import embed as cohere_embed, rerank as cohere_rerank
from .ollama import catalogue as ollama_catalogue, routes as ollama
from .openai import routes as openai
from .native import routes as native
from .ops import docs, routes as ops
from .siglip import routes as siglip
from .tei import routes as tei
from .vllm import routes as vllm, scoring as vllm_scoring  # noqa: F401 (scoring's routes join vllm's blueprint)

BLUEPRINTS = (
    ops.bp, docs.bp, siglip.bp, tei.bp, openai.bp, ollama.bp, ollama_catalogue.bp, cohere_rerank.bp, cohere_embed.bp,
    vllm.bp, native.bp,
)
