"""Pytest plugin: tests may not open outbound network connections (loopback and AF_UNIX sockets stay allowed).

Registered from `tests/conftest.py` with `pytest_plugins = ["netguard"]`. For the whole session it replaces
`socket.socket.connect`, `socket.socket.connect_ex` and `socket.create_connection` with guards that raise
`NetworkAccessError` (a RuntimeError, "network access attempted: ...") for any other address, before any packet or
DNS lookup leaves. Every attempt is recorded, and a test during which one was made fails at teardown even when the
code under test swallowed the exception (e.g. a library retrying quietly). Subprocesses a test starts are not
covered by the patch; they can call `install()` themselves (the kill/resume tests do).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


class NetworkAccessError(RuntimeError):
    """An outbound network connection was attempted while the guard is active."""


def is_local_address(family: int, address: Any) -> bool:
    """True for AF_UNIX (and other non-IP) sockets and loopback/unspecified IP addresses or 'localhost'."""
    if family not in (socket.AF_INET, socket.AF_INET6) or isinstance(address, str | bytes):
        return True
    host = address[0] if isinstance(address, tuple) and address else address
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    host = str(host).strip("[]").split("%", 1)[0]
    if host.lower() in LOCAL_NAMES:
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False  # a host name: refused before it is even resolved
    return ip.is_loopback or ip.is_unspecified


@dataclass
class NetGuard:
    """Patches socket connection functions; `attempts` lists every refused (address, expected) pair."""

    attempts: list[tuple[str, bool]] = field(default_factory=list)
    _expecting: int = 0
    _originals: dict[str, Callable[..., Any]] = field(default_factory=dict)

    @property
    def installed(self) -> bool:
        """Whether the socket functions are currently patched by this guard."""
        return bool(self._originals)

    def _refuse(self, what: str, address: Any) -> None:
        self.attempts.append((f"{what} {address!r}", self._expecting > 0))
        raise NetworkAccessError(f"network access attempted: {what} {address!r} (tests must stay offline)")

    def install(self) -> None:
        """Replace the socket functions (idempotent)."""
        if self.installed:
            return
        orig_connect, orig_connect_ex = socket.socket.connect, socket.socket.connect_ex
        orig_create = socket.create_connection
        guard = self

        def connect(sock: socket.socket, address: Any) -> None:
            if not is_local_address(sock.family, address):
                guard._refuse("connect", address)
            return orig_connect(sock, address)

        def connect_ex(sock: socket.socket, address: Any) -> int:
            if not is_local_address(sock.family, address):
                guard._refuse("connect_ex", address)
            return orig_connect_ex(sock, address)

        def create_connection(address: Any, *args: Any, **kwargs: Any) -> socket.socket:
            if not is_local_address(socket.AF_INET, address):
                guard._refuse("create_connection", address)
            return orig_create(address, *args, **kwargs)

        self._originals = {"connect": orig_connect, "connect_ex": orig_connect_ex, "create_connection": orig_create}
        socket.socket.connect = connect  # type: ignore[method-assign,assignment]
        socket.socket.connect_ex = connect_ex  # type: ignore[method-assign,assignment]
        socket.create_connection = create_connection

    def uninstall(self) -> None:
        """Restore the original socket functions."""
        if not self.installed:
            return
        socket.socket.connect = self._originals["connect"]  # type: ignore[method-assign]
        socket.socket.connect_ex = self._originals["connect_ex"]  # type: ignore[method-assign]
        socket.create_connection = self._originals["create_connection"]
        self._originals = {}

    @contextmanager
    def expected(self) -> Iterator[list[tuple[str, bool]]]:
        """Attempts made inside this block are still refused, but do not fail the test (for testing the guard)."""
        self._expecting += 1
        try:
            yield self.attempts
        finally:
            self._expecting -= 1

    def unexpected_since(self, start: int) -> list[str]:
        """Descriptions of the unexpected attempts recorded after index `start`."""
        return [what for what, ok in self.attempts[start:] if not ok]


GUARD = NetGuard()


def install() -> NetGuard:
    """Activate the guard outside pytest (e.g. at the top of a subprocess a test starts); returns it."""
    GUARD.install()
    return GUARD


@pytest.fixture(scope="session", autouse=True)
def netguard_session() -> Iterator[NetGuard]:
    """Session-wide: every test runs with outbound connections refused."""
    GUARD.install()
    yield GUARD
    GUARD.uninstall()


@pytest.fixture(autouse=True)
def netguard(netguard_session: NetGuard) -> Iterator[NetGuard]:
    """Per test: fail the test if it attempted an outbound connection (even one the code caught)."""
    start = len(netguard_session.attempts)
    yield netguard_session
    bad = netguard_session.unexpected_since(start)
    if bad:
        pytest.fail(f"test attempted network access ({len(bad)}x): {bad[:3]}", pytrace=False)
