import sys

from signs.cli import main

sys.exit(main())
