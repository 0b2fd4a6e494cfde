import sys

from shailoo.cli import main

sys.exit(main())
