"""``python -m segengine``: the same command line as the ``segengine`` script."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
