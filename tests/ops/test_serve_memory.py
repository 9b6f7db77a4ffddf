"""``serve`` caps glibc's malloc arenas before its threads start (see docs/performance.md)."""

from __future__ import annotations

from typing import Any

import pytest

from server.cli import serve


class _Libc:
    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def mallopt(self, param: int, value: int) -> int:
        self.calls.append((param, value))
        return 1


def test_the_server_caps_malloc_arenas_when_the_operator_did_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    libc = _Libc()
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    monkeypatch.setattr(serve.ctypes, "CDLL", lambda name: libc)
    serve._limit_malloc_arenas()
    assert libc.calls == [(serve._M_ARENA_MAX, serve.MALLOC_ARENAS)]


def test_an_operators_malloc_arena_max_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    libc = _Libc()
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    monkeypatch.setattr(serve.ctypes, "CDLL", lambda name: libc)
    serve._limit_malloc_arenas()
    assert libc.calls == []


def test_a_platform_without_glibc_serves_all_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> Any:
        raise OSError("no libc.so.6 here")

    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    monkeypatch.setattr(serve.ctypes, "CDLL", missing)
    serve._limit_malloc_arenas()  # no error
