"""Ollama dialect: `/api/embed`, `/api/embeddings`, and the model catalogue (`/api/tags`, `/api/ps`, `/api/show`, `/api/version`)."""
