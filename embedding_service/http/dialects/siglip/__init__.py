"""The SigLIP service's API: `/embed_text`, and images on `/embed` (JSON or multipart)."""
