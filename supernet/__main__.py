"""``python -m supernet`` is the ``supernet`` command (``torchrun -m supernet`` too)."""

import sys

from supernet.cli import main

sys.exit(main())
