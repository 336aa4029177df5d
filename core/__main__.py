"""``python -m core`` runs the ``catalog`` command."""

import sys

from core.cli import main

sys.exit(main())
