"""Helpers the tests share: tiny random-weight models built on the spot, image files, slow and
integration clients, an example model family, and the repository paths."""
