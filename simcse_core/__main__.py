"""``python -m simcse_core``: the command line (see :mod:`simcse_core.cli`)."""

from __future__ import annotations

import sys

from simcse_core.cli import main

if __name__ == "__main__":
    sys.exit(main())
