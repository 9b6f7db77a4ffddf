"""Run a computation in a forked child process, and fall back to running it here.

Two parts of Muster use this. A night's report derives two nights from one frozen snapshot
and writes a PDF beside the other files; on a machine with a second core, half of that runs
at once (``server.reports``). The deriver folds a big round of the backlog (when it has
fallen behind) in a child (``server.reconcile.backlog.run``), so that the memory the round
needs is handed back to the system when the child leaves, instead of staying as the
process's high-water mark.

``start`` forks a child that computes ``fn()`` on the parent's memory (nothing is copied up
front: the child sees what the parent had) and sends the result back pickled through a pipe;
``Beside.result`` returns it. The child does nothing but ``fn``: no request, no log line, and
it leaves with ``os._exit`` (no cleanup handlers of the parent run in it). It never uses the
database connection it inherited (that one belongs to the parent; SQLite and PostgreSQL
connections must not cross a fork); with ``connect=True`` it runs ``fn`` on a thread of its
own, which opens a connection of its own (peewee's connections are per thread) and closes it
after. A child that writes takes SQLite's writer turn on a file descriptor of its own
(``server.db`` drops the inherited ones in the child), so a child that dies mid-write never
leaves the turn held.

The result never depends on where it was computed: ``fn`` must be a pure function of data
already in memory and of rows that cannot change any more (a night's events, received before
its past cut-off), or write one file of its own, or be a transaction that commits whole or
not at all (a drain); and whenever the child cannot give a result (no ``fork`` on this
platform, one worker configured, the child failed, was killed or took longer than
``timeout``) the parent runs ``fn()`` itself. Tests compare both ways.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import select
import signal
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")
log = logging.getLogger("muster.forked")

#: Seconds to wait for a child before giving up on it and computing in this process.
TIMEOUT = 300.0


class Beside(Generic[T]):
    """A computation started in a child process (or not started: then run on ``result``)."""

    def __init__(self, fn: Callable[[], T], pid: int | None, fd: int | None, timeout: float):
        self._fn = fn
        self._pid = pid
        self._fd = fd
        self._timeout = timeout
        #: Whether a child was started (it may still fail: then ``result`` computes here).
        self.forked = pid is not None

    def _collect(self, timeout: float) -> tuple[bool, T | None]:
        """The child's result, if it gave one: (True, value), else (False, None)."""
        assert self._pid is not None and self._fd is not None
        chunks: list[bytes] = []
        deadline = time.monotonic() + timeout
        finished = False
        status = -1
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([self._fd], [], [], left)[0]:
                    break  # too slow: killed below
                chunk = os.read(self._fd, 1 << 20)
                if not chunk:
                    finished = True
                    break
                chunks.append(chunk)
        finally:
            os.close(self._fd)
            with contextlib.suppress(ChildProcessError):  # reaped by someone else: no result
                if not finished:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(self._pid, signal.SIGKILL)
                _, status = os.waitpid(self._pid, 0)
        if not finished or not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
            return False, None
        try:
            return True, pickle.loads(b"".join(chunks))
        except Exception:  # a truncated stream: computed here instead
            return False, None

    def result(self, timeout: float | None = None) -> T:
        """``fn()``: the child's value when it gave one, otherwise computed here and now.

        ``timeout``: seconds to wait for the child from now (by default ``start``'s).
        """
        if self._pid is not None:
            ok, value = self._collect(self._timeout if timeout is None else timeout)
            self._pid = self._fd = None
            if ok:
                return value  # type: ignore[return-value]
            log.warning("worker process gave no result; computing in this process")
        return self._fn()


def _connected(fn: Callable[[], T]) -> T:
    """``fn()`` on a new thread with a database connection of its own (closed after)."""
    from server.db import database

    box: dict[str, Any] = {}

    def run() -> None:
        try:
            with database.connection_context():
                box["value"] = fn()
        except BaseException as exc:  # raised again on the calling thread
            box["error"] = exc

    thread = threading.Thread(target=run, name="forked-part")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


def start(
    fn: Callable[[], T], *, workers: int, timeout: float = TIMEOUT, connect: bool = False
) -> Beside[T]:
    """Start ``fn()`` in a forked child when ``workers`` > 1 and the platform can fork.

    ``connect``: ``fn`` reads the database; in the child it gets a connection of its own.
    """
    if workers <= 1 or not hasattr(os, "fork"):
        return Beside(fn, None, None, timeout)
    read_fd, write_fd = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(read_fd)
        os.close(write_fd)
        return Beside(fn, None, None, timeout)
    if pid == 0:  # the child: compute, send, leave without running the parent's cleanup
        code = 1
        try:
            os.close(read_fd)
            value = _connected(fn) if connect else fn()
            data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
            view = memoryview(data)
            while view:
                view = view[os.write(write_fd, view) :]
            code = 0
        except BaseException:  # the parent computes it again
            pass
        finally:
            os._exit(code)
    os.close(write_fd)
    return Beside(fn, pid, read_fd, timeout)
