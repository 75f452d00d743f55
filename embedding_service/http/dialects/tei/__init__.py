"""TEI dialect (Hugging Face text-embeddings-inference): `/embed`, `/embed_all`, `/similarity`, `/tokenize`, `/decode`, `/rerank`, `/`."""
