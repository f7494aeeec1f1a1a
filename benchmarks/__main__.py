"""``python -m benchmarks``: the same run as ``signs bench``."""

import sys

from benchmarks.run import main

sys.exit(main())
