"""What the service does, independent of any API dialect: embed, rerank, tokenize, and the per-request limits they enforce against the serving state."""
