"""Cohere dialect: `/v1/embed`, `/v2/embed`, and reranking on `/rerank`, `/v1/rerank`, `/v2/rerank`."""
