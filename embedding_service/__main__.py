"""Development server: `python -m embedding_service` runs the same app on Flask's threaded server."""

from __future__ import annotations

import sys

from .settings import Settings, SettingsError


def main() -> int:
    try:
        settings = Settings.from_env()
        from .app import create_app

        app = create_app(settings)
    except SettingsError as exc:
        print(f"embedding_service: configuration error: {exc}", file=sys.stderr)
        return 2
    app.run(host=settings.host, port=settings.port, threaded=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
