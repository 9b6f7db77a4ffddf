"""``python -m server.cli`` is ``muster-server``."""

from server.cli import main

main()
