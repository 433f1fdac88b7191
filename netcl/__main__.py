"""`python -m netcl` runs the `netcl` command."""

import sys

from netcl.cli.main import main

sys.exit(main())
