"""Where things are: the repository root and this folder."""

import os

#: This folder (tests/support).
SUPPORT = os.path.dirname(os.path.abspath(__file__))
#: The repository root.
ROOT = os.path.dirname(os.path.dirname(SUPPORT))
