"""No network unless asked: the netguard plugin refuses outbound connections in every test; wandb stays off.

The guard (`tests/netguard.py`) is an autouse session fixture registered by `tests/conftest.py`, so every test of
the suite — predict, export, train, evaluate, extract and the demo included — runs with outbound connections
refused and fails if it attempted one. These tests prove the guard is active and that it works.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
from pathlib import Path

import pytest

from netguard import GUARD, NetGuard, NetworkAccessError, is_local_address


def test_guard_is_registered_for_the_whole_suite(request: pytest.FixtureRequest) -> None:
    assert request.config.pluginmanager.has_plugin("netguard"), "add `pytest_plugins = ['netguard']` to conftest.py"
    assert GUARD.installed
    assert socket.socket.connect is not GUARD._originals["connect"]


def test_outbound_connect_is_refused(netguard: NetGuard) -> None:
    with netguard.expected() as attempts:
        before = len(attempts)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.settimeout(0.5)
            with pytest.raises(RuntimeError, match="network access attempted"):
                sock.connect(("10.255.255.1", 80))
            with pytest.raises(NetworkAccessError):
                sock.connect_ex(("10.255.255.1", 80))
        finally:
            sock.close()
        with pytest.raises(NetworkAccessError, match=r"example\.com"):  # refused before any DNS lookup
            socket.create_connection(("example.com", 443), timeout=0.5)
        assert len(attempts) == before + 3 and all(ok for _, ok in attempts[before:])


def test_swallowed_attempt_still_fails_the_test() -> None:
    guard = NetGuard()
    guard.install()
    try:
        start = len(guard.attempts)
        with contextlib.suppress(RuntimeError):  # code under test hiding the error
            socket.create_connection(("192.0.2.1", 80), timeout=0.1)
        assert guard.unexpected_since(start) == ["create_connection ('192.0.2.1', 80)"]
    finally:
        guard.uninstall()
    assert not guard.installed


def test_loopback_and_unix_sockets_are_allowed(tmp_path: Path) -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    accepted: list[socket.socket] = []
    thread = threading.Thread(target=lambda: accepted.append(server.accept()[0]))
    thread.start()
    with socket.create_connection(server.getsockname(), timeout=5):
        thread.join(5)
    for s in [*accepted, server]:
        s.close()
    assert accepted
    a, b = socket.socketpair()
    a.sendall(b"x")
    assert b.recv(1) == b"x"
    a.close(), b.close()
    assert is_local_address(socket.AF_INET6, ("::1", 80, 0, 0))
    assert is_local_address(socket.AF_INET, ("localhost", 80))
    assert is_local_address(socket.AF_UNIX, str(tmp_path / "sock"))
    assert not is_local_address(socket.AF_INET, ("8.8.8.8", 53))
    assert not is_local_address(socket.AF_INET6, ("2001:4860:4860::8888", 53, 0, 0))


def test_train_never_uses_wandb_unless_asked(cfg_factory, tmp_path: Path, monkeypatch) -> None:
    """With the default logger, a train run works while `import wandb` is impossible (and starts no wandb run).

    Note: `import timm` itself imports wandb (timm.utils.summary, guarded by try/except), so `wandb` may sit in
    sys.modules; what matters is that deepdetect never needs it nor calls `wandb.init` unless `logger=wandb`.
    """
    from deepdetect.training.loggers import build_logger
    from deepdetect.training.train import train
    from tiny_data import make_tiny_manifest

    manifest = make_tiny_manifest(tmp_path / "data", n_videos=8, frames_per_video=1, size=32)
    monkeypatch.setitem(sys.modules, "wandb", None)  # any `import wandb` now raises ImportError
    out = tmp_path / "run"
    cfg = cfg_factory("train", ["model=test", f"data.manifest={manifest}", f"output_dir={out}", "trainer.max_epochs=1"])
    assert cfg.logger.name != "wandb"
    train(cfg)
    assert (out / "metrics.json").is_file() and not (out / "wandb").exists()
    with pytest.raises(ImportError):  # control: the wandb logger really would have imported it
        build_logger({"name": "wandb", "project": "p", "mode": "offline"}, tmp_path / "w", {})
