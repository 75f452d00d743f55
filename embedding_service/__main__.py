"""`python -m embedding_service`: the development server (Flask's threaded server), as
`embedding_service.process.dev_server` describes it."""

import sys

from .process.dev_server import main

if __name__ == "__main__":
    sys.exit(main())
