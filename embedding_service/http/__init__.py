"""The HTTP edge: the Flask app factory, request hooks, security, JSON in and out, the error-to-status table, OpenAPI, and the dialects (dialects/)."""
