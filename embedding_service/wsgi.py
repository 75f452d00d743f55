"""WSGI entry point for Gunicorn: `gunicorn -c gunicorn.conf.py embedding_service.wsgi:app`."""

from .process.boot import current_app

app = current_app()
