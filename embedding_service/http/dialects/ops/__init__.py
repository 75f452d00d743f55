"""Operational routes: health, readiness, info, metrics, the route index, the OpenAPI document and Swagger UI."""
