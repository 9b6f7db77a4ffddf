"""A fault-injecting HTTP/1.1 proxy on loopback, between field devices and a real server.

Each client connection carries one request (the devices' transports keep no connections
alive), and the proxy picks one fault for it:

- ``pass``              forward the request and the answer untouched
- ``delay``             wait, then forward both ways
- ``reset_request``     forward the first N request bytes, then reset both connections
- ``truncate_request``  forward the first N request bytes, then close the upstream side cleanly
- ``reset_response``    the server gets the whole request (and commits); the client gets the
                        first N bytes of the answer, then a reset: the answer is lost
- ``truncate_response`` as above but closed cleanly (FIN), so the client sees a short answer
- ``dup_before``        send the request twice: the first answer is thrown away
- ``dup_after``         answer the client, then send the same request again (a late replay)

The proxy records how often it chose each fault and how many requests went to each path.
"""

from __future__ import annotations

import random
import socket
import struct
import threading
import time
from collections import Counter
from contextlib import suppress

FAULTS: dict[str, float] = {
    "pass": 30,
    "delay": 10,
    "reset_request": 10,
    "truncate_request": 8,
    "reset_response": 16,
    "truncate_response": 8,
    "dup_before": 9,
    "dup_after": 9,
}
_TIMEOUT = 15.0


def _reset(sock: socket.socket) -> None:
    """Close with a TCP reset (RST) rather than an orderly FIN."""
    with suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def _read_message(sock: socket.socket, until_close: bool) -> bytes:
    """Read one HTTP message (head and Content-Length body; or everything until close)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = None
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    if length is None and not until_close:
        length = 0
    while length is None or len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


class FaultProxy:
    """Listens on a free loopback port and forwards to ``upstream`` with injected faults."""

    def __init__(
        self, upstream_port: int, seed: int = 7, faults: dict[str, float] | None = None
    ) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self.faults = faults or FAULTS
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.chosen: Counter[str] = Counter()
        self.paths: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(128)
        self.port = int(self.listener.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopped.set()
        with suppress(OSError):
            self.listener.close()
        self._thread.join(5)

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                names = list(self.faults)
                fault = self.rng.choices(names, weights=[self.faults[n] for n in names])[0]
                cut = self.rng.random()
                delay = self.rng.uniform(0.02, 0.4)
                self.chosen[fault] += 1
            threading.Thread(
                target=self._handle, args=(conn, fault, cut, delay), daemon=True
            ).start()

    def _exchange(self, request: bytes) -> bytes:
        """Send ``request`` to the server on a fresh connection; return its whole answer."""
        with socket.create_connection(self.upstream, timeout=_TIMEOUT) as up:
            up.sendall(request)
            answer = _read_message(up, until_close=True)
        status = answer.split(b" ", 2)[1] if answer.startswith(b"HTTP/") else b"0"
        with self.lock:
            self.statuses[int(status) if status.isdigit() else 0] += 1
        return answer

    def _handle(self, conn: socket.socket, fault: str, cut: float, delay: float) -> None:
        conn.settimeout(_TIMEOUT)
        try:
            request = _read_message(conn, until_close=False)
            if not request:
                conn.close()
                return
            line = request.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
            path = line[1].split("?")[0] if len(line) > 1 else "?"
            with self.lock:
                self.paths[path] += 1
            n = max(1, int(len(request) * cut))
            if fault in ("reset_request", "truncate_request"):
                with socket.create_connection(self.upstream, timeout=_TIMEOUT) as up:
                    up.sendall(request[:n])
                    if fault == "reset_request":
                        _reset(up)
                        _reset(conn)
                        return
                    up.shutdown(socket.SHUT_WR)
                    answer = _read_message(up, until_close=True)
                if answer:
                    conn.sendall(answer)
                conn.close()
                return
            if fault == "delay":
                time.sleep(delay)
            if fault == "dup_before":
                self._exchange(request)
            answer = self._exchange(request)
            if fault == "reset_response":
                conn.sendall(answer[: int(len(answer) * cut)])
                _reset(conn)
                return
            if fault == "truncate_response":
                conn.sendall(answer[: int(len(answer) * cut)])
                conn.shutdown(socket.SHUT_RDWR)
                conn.close()
                return
            if fault == "delay":
                time.sleep(delay)
            conn.sendall(answer)
            conn.close()
            if fault == "dup_after":
                self._exchange(request)
        except OSError:
            _reset(conn)
