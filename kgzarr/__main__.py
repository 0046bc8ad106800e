"""Allow ``python -m kgzarr``."""

import sys

from kgzarr.cli import main

sys.exit(main())
