"""What the service does, independent of any API dialect: embed, rerank, tokenize, and the per-request budgets they enforce against the serving state."""
