"""The contributor guide's worked example of a new model family (E5-style text embedders), used
by tests/unit/test_layers_and_seams.py: one module, plus one row in the family table."""

from __future__ import annotations

from embedding_service.models.text import TextEmbedder

#: E5's prefixes (intfloat/e5-* model cards): queries and passages are marked in the text itself.
E5_PROMPTS = {"query": "query: ", "document": "passage: "}


class E5Embedder(TextEmbedder):
    """An E5 embedder: a text embedder whose inputs are passages unless `input_type` says query."""

    def __init__(self, spec, device, dtype, files, config):
        super().__init__(spec, device, dtype, files, config)
        self.prompts = dict(E5_PROMPTS)
        self.default_prompt_name = "document"
