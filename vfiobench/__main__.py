"""``python -m vfiobench`` is the ``vfiobench`` command."""

import sys

from vfiobench.cli import main

sys.exit(main())
