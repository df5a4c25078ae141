"""`python -m newswatch` runs the command line."""

import sys

from newswatch.cli import main

sys.exit(main())
