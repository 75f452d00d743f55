"""The service's own retrieval routes: `POST /v1/sparse_embeddings`, sparse vectors in the form
vector databases take as they are (`{"indices", "values"}`), in OpenAI's envelope."""
