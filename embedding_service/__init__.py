"""embedding_service: text and image embeddings and reranking over HTTP, in the OpenAI, TEI,
Ollama and Cohere dialects and the SigLIP service API (see README.md).

Importing the package is cheap and torch-free (Gunicorn's master imports the settings); the app
factory lives in `embedding_service.http.app`.
"""

__version__ = "0.1.0"


def create_app(*args, **kwargs):
    """Lazy alias of :func:`embedding_service.http.app.create_app`."""
    from .http.app import create_app as factory

    return factory(*args, **kwargs)
