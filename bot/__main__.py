"""``python -m bot``: the command line, which lives in the application package (app/cli.py)."""

import sys

from app.cli import main

sys.exit(main())
