"""Allow ``python -m netdiag``."""

import sys

from netdiag.cli import main

sys.exit(main())
