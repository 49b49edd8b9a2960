"""The watch store on a real PostgreSQL server that the test starts itself (initdb + pg_ctl on a Unix socket in a
temporary folder, no TCP port); skipped with the reason when the binaries are absent or no server can start."""

from __future__ import annotations

import csv
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from deepdetect.cli.watch import main
from watch_server import Route, jpeg_bytes, loopback_server, page

pytestmark = pytest.mark.slow


def _bin_dir() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    return Path(dirs[0]) if dirs and (Path(dirs[0]) / "initdb").is_file() else None


def _as_user() -> list[str]:
    """initdb refuses to run as root: there, run the server tools as the `postgres` account."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("running as root and no `postgres` account to run the PostgreSQL server as")
    runuser = shutil.which("runuser")
    if runuser is None:
        pytest.skip("running as root without runuser to start PostgreSQL as `postgres`")
    return [runuser, "-u", "postgres", "--"]


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    bindir = _bin_dir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not installed (Debian: apt-get install postgresql)")
    pytest.importorskip("psycopg", reason="psycopg not installed (pip install 'deepdetect[postgres]')")
    prefix = _as_user()
    # a folder of its own (pytest's temporary root is private to this user, the server may run as another)
    root = Path(tempfile.mkdtemp(prefix="deepdetect-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    if prefix:
        shutil.chown(root, "postgres")
        shutil.chown(sock, "postgres")
        os.chmod(root, 0o755)
    log = root / "server.log"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*prefix, *args], capture_output=True, text=True, timeout=120)

    init = run(str(bindir / "initdb"), "-D", str(data), "-U", "watch", "--auth=trust", "-E", "UTF8")
    if init.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"initdb failed, no PostgreSQL server for this test: {init.stderr.strip()[-300:]}")
    opts = f"-c listen_addresses='' -c unix_socket_directories={sock} -c fsync=off"
    start = run(str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(log), "-w", "-t", "60", "start")
    if start.returncode != 0:
        tail = log.read_text()[-300:] if log.exists() else start.stderr[-300:]
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"the PostgreSQL server did not start: {tail.strip()}")
    try:
        yield f"postgresql://watch@/postgres?host={sock}"
    finally:
        run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)


def test_same_schema_and_commands_on_postgresql(
    tmp_path: Path, pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with loopback_server() as server:
        server.routes["/pic.jpg"] = Route(body=jpeg_bytes(1), content_type="image/jpeg")
        server.routes["/a.html"] = Route(body=page("/pic.jpg"))
        server.routes["/b.html"] = Route(body=page("/pic.jpg"))
        src = tmp_path / "urls.csv"
        src.write_text(f"url,note\n{server.url('/a.html')},first\n{server.url('/b.html')},\n", encoding="utf-8")
        ev = ["--evidence", str(tmp_path / "evidence")]
        local = ["--allow-host", "127.0.0.1", "--host-rate", "0", *ev]
        assert main(["add", str(src), "--store", pg_url, "--case", "team"]) == 0
        assert main(["check", "--store", pg_url, "--due", *local]) == 0
        assert "live 2" in capsys.readouterr().out
        server.routes["/b.html"] = Route(410, b"gone")
        assert main(["check", "--store", pg_url, *local]) == 0
        assert "live 1, removed 1" in capsys.readouterr().out
        out = tmp_path / "r.csv"
        assert main(["report", "--store", pg_url, "--format", "csv", "-o", str(out)]) == 0
        with out.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        assert sorted(r["status"] for r in rows) == ["live", "removed"]
        assert main(["verify", "--store", pg_url, *ev]) == 0
        assert main(["check", "--store", pg_url, "--allow-host", "127.0.0.1"]) == 2  # a URL store needs --evidence
