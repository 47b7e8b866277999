"""`python -m nasnet_app.cli ...` is `nasnet-app ...`."""

import sys

from nasnet_app.cli import main

sys.exit(main())
