import sys

from harmonylib.cli import main

sys.exit(main())
