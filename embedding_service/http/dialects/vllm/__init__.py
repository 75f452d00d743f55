"""vLLM dialect: `POST /pooling` (tasks `embed` and `token_embed`)."""
