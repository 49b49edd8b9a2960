"""`deepdetect-watch run` killed with SIGKILL mid-pass: nothing recorded is lost, the evidence of every recorded
check verifies, and the next run fetches only the URLs that were never recorded (at most those in flight and
those not yet started), each URL checked exactly once in all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from deepdetect.watch.api import CheckOptions, check_store, verify_store
from deepdetect.watch.store import NewUrl, Store
from watch_server import Route, jpeg_bytes, loopback_server, page

pytestmark = pytest.mark.slow
TESTS = Path(__file__).resolve().parent
RUN = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[1])
    import netguard
    netguard.install()
    from deepdetect.cli.watch import main
    sys.exit(main(sys.argv[2:]))
    """
)


def test_killed_run_loses_nothing_and_refetches_only_unrecorded_urls(tmp_path: Path) -> None:
    n = 30
    with loopback_server() as server:
        server.routes["/pic.jpg"] = Route(body=jpeg_bytes(1), content_type="image/jpeg")
        for i in range(n):
            server.routes[f"/p{i}.html"] = Route(body=page("/pic.jpg"), kind="slow", delay=0.3)
        store = tmp_path / "w.db"
        with Store(store, create=True) as st:
            st.add_urls([NewUrl(server.url(f"/p{i}.html"), "x", "127.0.0.1", "127.0.0.1") for i in range(n)], "c", "t")
        args = ["run", "--store", str(store), "--every", "1h", "--allow-host", "127.0.0.1", "--workers", "2"]
        proc = subprocess.Popen([sys.executable, "-c", RUN, str(TESTS), *args], env={**os.environ})
        deadline = time.monotonic() + 300
        recorded = 0
        while time.monotonic() < deadline and recorded < 6:
            time.sleep(0.2)
            with Store(store) as st:
                recorded = len(st.checks())
            assert proc.poll() is None, "the run ended before it was killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        with Store(store) as st:
            recorded_urls = {c["url_id"] for c in st.checks()}
            in_flight = [u for u in st.urls() if u["in_flight_since"]]
        assert 6 <= len(recorded_urls) < n
        assert len(in_flight) <= 2 * 2  # the claimed window: twice the workers
        assert verify_store(str(store)).problems == []  # every recorded check's evidence is whole
        hits_before = sum(v for k, v in server.hits.items() if k.endswith(".html"))
        opts = CheckOptions(allow_hosts=("127.0.0.1",), workers=4, host_rate=0.0)
        counts = check_store(str(store), opts, due_only=True)
        assert sum(counts.values()) == n - len(recorded_urls)
        assert sum(v for k, v in server.hits.items() if k.endswith(".html")) - hits_before == n - len(recorded_urls)
        with Store(store) as st:
            per_url = [len(st.checks(u["id"])) for u in st.urls()]
        assert per_url == [1] * n
        res = verify_store(str(store))
        assert res.problems == [] and res.ok == res.checked == 2 * n
