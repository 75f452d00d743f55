"""The service's vocabulary, imported by every layer and importing none: its errors (plain exceptions; the HTTP edge maps them to statuses) and model kinds."""
