"""``python -m automator``: the same as the ``automator`` command."""

from automator.cli import main

raise SystemExit(main())
