"""OpenAI dialect: `POST /v1/embeddings`, `GET /v1/models`."""
