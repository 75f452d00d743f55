"""Models: the interfaces every family implements (base.py: TextEncoder, ImageEncoder, Reranker),
the family table that picks a checkpoint's class and loads it (families.py), the one loading
helper (loading.py), and one module per family: text.py (transformers encoders and decoders,
pooled as sentence-transformers does), multimodal.py (SigLIP 2, SigLIP, CLIP), cross_encoder.py
and qwen3_reranker.py (rerankers). Shared pieces: tokenize.py (lock-free concurrent tokenising),
pooling.py, detect.py (reading how to run a text model from its files), spec.py (which models
to serve, from the settings) and files.py (a model's JSON files, local or from the hub).

Importing this package does not import torch; base.py, loading.py and the family modules do.
"""
