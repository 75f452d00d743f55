"""embedding_service: text and image embeddings and reranking over HTTP, in the OpenAI, TEI,
Ollama and Cohere dialects and the SigLIP service API (see README.md).

Importing the package is cheap and torch-free (Gunicorn's master imports the settings). The
folders are the layers, outermost first: process/, http/ (dialects/ inside), operations/,
inference/, models/, images/, observability/, config/, domain/.
"""

__version__ = "0.1.0"
