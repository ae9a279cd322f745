"""``python -m tui.cli`` is ``gputui``."""

from tui.cli import main

raise SystemExit(main())
