"""Logs, Prometheus metrics and per-request statistics."""
