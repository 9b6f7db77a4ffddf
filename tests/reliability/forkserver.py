"""A crash-test server: the real app and waitress in a child process that is forked again on death.

``muster-server serve`` takes over a second to start on these machines (imports, key loading,
migration check), which would make hundreds of kills take many minutes. This supervisor pays
that cost once: it builds the app, runs the same bootstrap ``serve`` runs, binds the listening
socket, then forks a child that serves it with waitress exactly as ``serve`` does. The test
SIGKILLs the child; the supervisor reaps it and forks the next one within milliseconds.
Connections arriving in between wait in the listen backlog, as they would behind socket
activation. The child holds no state from the parent but the loaded code and keys: its
database connections are its own, opened after the fork.

Protocol on stdout: one JSON line with the bootstrap report, then each child's pid per line.

    python -m tests.reliability.forkserver PORT   (MUSTER_INSTANCE_PATH, MUSTER_DATABASE_URL)
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
from types import FrameType


def main(port: int) -> None:
    """Bootstrap once, then keep one forked waitress child serving ``port`` until SIGTERM."""
    import logging

    import waitress

    from server import create_app
    from server.db import database
    from server.setup import bootstrap

    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    app = create_app()
    report = bootstrap(app)
    if not database.is_closed():
        database.close()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(512)
    print(json.dumps(report, default=str), flush=True)
    child = 0

    def stop(signum: int, frame: FrameType | None) -> None:
        if child:
            os.kill(child, signal.SIGKILL)
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    while True:
        child = os.fork()
        if child == 0:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            waitress.serve(
                app,
                sockets=[sock],
                threads=8,
                ident="muster",
                max_request_body_size=app.config["MAX_CONTENT_LENGTH"] * 2,
                _quiet=True,
            )
            os._exit(0)
        print(child, flush=True)
        os.waitpid(child, 0)


if __name__ == "__main__":
    main(int(sys.argv[1]))
