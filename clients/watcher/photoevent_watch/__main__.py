"""`python -m photoevent_watch`: the same as the `photoevent-watch` command."""

import sys

from photoevent_watch.cli import main

sys.exit(main())
