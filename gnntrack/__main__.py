import sys

from gnntrack.cli import main

sys.exit(main())
