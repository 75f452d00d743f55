"""Configuration, torch-free: everything Gunicorn's master imports (settings, which models to serve, device slots, the CPU share between workers)."""
