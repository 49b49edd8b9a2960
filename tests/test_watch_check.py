"""deepdetect-watch against a loopback server: every status, evidence in WARC files, redirects to refused
addresses, timeouts, oversized and hostile pages, hash-only cases, reports, verify and the CLI."""

from __future__ import annotations

import csv
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deepdetect.cli.watch import main
from deepdetect.watch.api import CheckOptions, check_store, evidence_root, open_checker, verify_store
from deepdetect.watch.evidence import BODY_HEADER, iter_records, sha256_label
from deepdetect.watch.fetch import FetchLimits
from deepdetect.watch.report import report_rows
from deepdetect.watch.schedule import PassSettings, run_pass
from deepdetect.watch.store import NewUrl, Store
from deepdetect.watch.urls import normalise_url, registrable_domain, url_host
from watch_server import LoopbackServer, Route, jpeg_bytes, loopback_server, mp4_bytes, page

# generous timeouts (a busy shared machine must not turn a live page unreachable); tight ones where timeouts are tested
LIMITS = FetchLimits(
    connect_timeout=10.0, read_timeout=20.0, total_timeout=60.0, max_page_bytes=256 * 1024, max_media_bytes=1 << 20
)
TIGHT = FetchLimits(connect_timeout=5.0, read_timeout=1.0, total_timeout=2.0, max_page_bytes=256 * 1024)
OPTS = CheckOptions(allow_hosts=("127.0.0.1",), workers=4, host_rate=0.0, limits=LIMITS)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LoopbackServer]:
    with loopback_server() as srv:
        srv.routes["/pic.jpg"] = Route(body=jpeg_bytes(1), content_type="image/jpeg")
        srv.routes["/other.jpg"] = Route(body=jpeg_bytes(2), content_type="image/jpeg")
        srv.routes["/clip.mp4"] = Route(body=mp4_bytes(tmp_path), content_type="video/mp4")
        srv.routes["/page.html"] = Route(body=page("/clip.mp4", "/pic.jpg", og="/pic.jpg"))
        yield srv


def add(store: Path, urls: list[str], case: str = "default") -> None:
    with Store(store, create=True) as st:
        items = []
        for u in urls:
            n = normalise_url(u)
            items.append(NewUrl(n, u, url_host(n), registrable_domain(n)))
        st.add_urls(items, case, "test")


def check(store: Path, opts: CheckOptions = OPTS) -> dict[str, dict[str, Any]]:
    """One pass over every URL; the URL rows by URL."""
    check_store(str(store), opts, due_only=False)
    with Store(store) as st:
        return {u["url"]: u for u in st.urls()}


def last_media(store: Path, url: str) -> list[dict[str, Any]]:
    with Store(store) as st:
        row = next(u for u in st.urls() if u["url"] == url)
        checks = st.checks(row["id"])
        return st.media([checks[-1]["id"]])


def test_live_then_removed_by_404_and_410(tmp_path: Path, server: LoopbackServer) -> None:
    store = tmp_path / "w.db"
    a, b = server.url("/page.html"), server.url("/page2.html")
    server.routes["/page2.html"] = Route(body=page("/other.jpg"))
    add(store, [a, b])
    rows = check(store)
    assert rows[a]["status"] == rows[b]["status"] == "live"
    media = last_media(store, a)
    assert len(media) == 2 and media[0]["found_by"] == "source"  # og:image is the same picture: one item
    assert all(m["status"] == "ok" and len(m["sha256"]) == 64 and m["pdq"] for m in media)
    assert {m["kind"] for m in media} == {"video", "image"}
    server.routes["/page.html"] = Route(404, b"gone")
    server.routes["/page2.html"] = Route(410, b"gone for good")
    rows = check(store)
    assert rows[a]["status"] == rows[b]["status"] == "removed"
    assert rows[a]["removed_at"] and rows[a]["last_seen_live"] and rows[a]["first_seen"]
    report = {r["url"]: r for r in report_rows(Store(store))}
    assert report[a]["hours_report_to_removal"] is not None and report[a]["n_media"] == 2
    assert report[a]["domain"] == "127.0.0.1" and report[a]["evidence"].endswith(".warc.gz@0 ") is False


def test_media_dropped_or_replaced_between_checks(tmp_path: Path, server: LoopbackServer) -> None:
    store = tmp_path / "w.db"
    server.routes["/a.html"] = Route(body=page("/pic.jpg"))
    server.routes["/b.html"] = Route(body=page("/other.jpg"))
    server.routes["/c.html"] = Route(body=page("/clip.mp4"))
    a, b, c = (server.url(p) for p in ("/a.html", "/b.html", "/c.html"))
    add(store, [a, b, c])
    assert {r["status"] for r in check(store).values()} == {"live"}
    server.routes["/a.html"] = Route(body=page())  # the media dropped from the page
    server.routes["/b.html"] = Route(body=page("/pic.jpg"))  # other media now
    del server.routes["/clip.mp4"]  # still embedded, no longer served (404)
    rows = check(store)
    assert rows[a]["status"] == "removed" and rows[c]["status"] == "removed"
    assert rows[b]["status"] == "changed"
    assert [m["status"] for m in last_media(store, c)] == ["removed"]


def test_direct_media_url_live_then_removed(tmp_path: Path, server: LoopbackServer) -> None:
    store = tmp_path / "w.db"
    url = server.url("/pic.jpg")
    add(store, [url])
    assert check(store)[url]["status"] == "live"
    (m,) = last_media(store, url)
    assert m["found_by"] == "direct" and m["status"] == "ok" and m["kind"] == "image"
    del server.routes["/pic.jpg"]
    assert check(store)[url]["status"] == "removed"


def test_redirects_followed_and_refused_before_connecting(
    tmp_path: Path, server: LoopbackServer, netguard: Any
) -> None:
    store = tmp_path / "w.db"
    server.routes["/r1"] = Route(302, kind="redirect", location="/page.html")
    server.routes["/to-private"] = Route(302, kind="redirect", location="http://10.0.0.1/admin")
    server.routes["/to-metadata"] = Route(301, kind="redirect", location="http://169.254.169.254/latest/meta-data/")
    server.routes["/to-mapped"] = Route(307, kind="redirect", location="http://[::ffff:10.1.2.3]/")
    server.routes["/to-file"] = Route(302, kind="redirect", location="file:///etc/passwd")
    server.routes["/loop"] = Route(302, kind="redirect", location="/loop")
    urls = {p: server.url(p) for p in ("/r1", "/to-private", "/to-metadata", "/to-mapped", "/to-file", "/loop")}
    add(store, [*urls.values(), "http://10.0.0.2/report", "http://[fe80::1]/x"])
    before = len(netguard.attempts)
    rows = check(store)
    assert len(netguard.attempts) == before  # nothing tried to connect anywhere but 127.0.0.1
    assert rows[urls["/r1"]]["status"] == "live"
    for p in ("/to-private", "/to-metadata", "/to-mapped", "/to-file"):
        assert rows[urls[p]]["status"] == "blocked", p
    assert rows["http://10.0.0.2/report"]["status"] == "blocked"
    assert rows["http://[fe80::1]/x"]["status"] == "blocked"
    assert rows[urls["/loop"]]["status"] == "unreachable"
    with Store(store) as st:
        reasons = {u["url"]: c["reason"] for u in st.urls() for c in st.checks(u["id"])}
    assert "link-local" in reasons[urls["/to-metadata"]] and "private" in reasons[urls["/to-private"]]
    assert "redirects" in reasons[urls["/loop"]]
    assert server.hits["/loop"] == LIMITS.max_redirects + 1


def test_slow_endless_oversized_and_hostile_responses_are_statuses(tmp_path: Path, server: LoopbackServer) -> None:
    store = tmp_path / "w.db"
    deep = b"<div>" * 100_000 + b'<img src="/pic.jpg">' + b"</div>" * 100_000
    server.routes.update(
        {
            "/big.html": Route(body=b"<html>" + b"a" * (LIMITS.max_page_bytes + 10)),
            "/deep.html": Route(body=deep[: LIMITS.max_page_bytes - 100] + b'<img src="/pic.jpg">'),
            "/hostile-ct": Route(body=b"MZ\x90\x00", content_type="application/x-msdownload"),
            "/garbage-ct": Route(body=b"<p>x</p>", content_type="te\x01xt/h\x7ftml;;;==="),
            "/no-ct": Route(body=b"<p>x</p>", content_type=None),
            "/ctrl.html": Route(
                body=page("/a%1B%5B31m%00.jpg", "/ok\x07.jpg", extra='<img src="javascript:alert(1)">')
            ),
            "/a%1B%5B31m%00.jpg": Route(body=jpeg_bytes(3), content_type="image/jpeg"),
            "/500": Route(503, b"busy"),
        }
    )
    urls = {
        p: server.url(p)
        for p in server.routes
        if p not in ("/pic.jpg", "/other.jpg", "/clip.mp4", "/page.html", "/a%1B%5B31m%00.jpg")
    }
    add(store, list(urls.values()))
    rows = check(store)
    for p in ("/big.html", "/hostile-ct", "/garbage-ct", "/no-ct", "/500"):
        assert rows[urls[p]]["status"] == "unreachable", p
    assert rows[urls["/deep.html"]]["status"] == "live"
    assert rows[urls["/ctrl.html"]]["status"] == "live"
    ctrl = last_media(store, urls["/ctrl.html"])
    assert [m["media_url"] for m in ctrl] == [server.url("/a%1B%5B31m%00.jpg")]  # control bytes only escaped
    with Store(store) as st:
        reasons = {u["url"]: c["reason"] for u in st.urls() for c in st.checks(u["id"])}
    assert "larger than" in reasons[urls["/big.html"]] and "content type" in reasons[urls["/hostile-ct"]]


def test_slow_endless_and_endless_large_responses_time_out_or_are_cut(tmp_path: Path, server: LoopbackServer) -> None:
    store = tmp_path / "w.db"
    server.routes["/slow"] = Route(kind="slow", delay=3.0)  # nothing for longer than the read timeout
    server.routes["/endless"] = Route(kind="endless", delay=0.05)  # a trickle that never ends: the total deadline
    server.routes["/huge"] = Route(kind="huge")  # 16 GiB declared and streamed: cut at the cap
    urls = {p: server.url(p) for p in ("/slow", "/endless", "/huge")}
    add(store, list(urls.values()))
    rows = check(store, CheckOptions(**{**OPTS.__dict__, "limits": TIGHT}))
    assert {r["status"] for r in rows.values()} == {"unreachable"}
    with Store(store) as st:
        reasons = {u["url"]: c["reason"] for u in st.urls() for c in st.checks(u["id"])}
    assert "timeout" in reasons[urls["/slow"]] and "larger than" in reasons[urls["/huge"]]
    assert "within 2 s" in reasons[urls["/endless"]] or "larger than" in reasons[urls["/endless"]]
    res = verify_store(str(store))  # the bodies that arrived before the cut are evidence too, and verify
    assert res.checked == 2 and res.ok == 2 and not res.problems


def test_evidence_warc_records_sha256_and_verify(tmp_path: Path, server: LoopbackServer) -> None:
    store = tmp_path / "w.db"
    url = server.url("/page.html")
    add(store, [url], case="case-7")
    check(store)
    root = evidence_root(str(store), None)
    (warc,) = list((root / "case-7").glob("*.warc.gz"))
    assert stat.S_IMODE(warc.stat().st_mode) == 0o600 and stat.S_IMODE(root.stat().st_mode) == 0o700
    records = list(iter_records(warc))
    types = [t for t, _, _ in records]
    assert types.count("response") == types.count("request") == 3  # the page, the video, the image
    for rtype, _uri, headers in records:
        assert headers["WARC-Date"].endswith("Z")
        if rtype == "response":
            assert headers["WARC-Payload-Digest"] == sha256_label(headers[BODY_HEADER])
            assert headers["WARC-Block-Digest"].startswith("sha256:")
    res = verify_store(str(store))
    assert res.checked == 3 and res.ok == 3 and not res.problems
    data = bytearray(warc.read_bytes())  # tamper: rewrite the file with one record's body changed
    import gzip
    import zlib

    members, pos = [], 0
    while pos < len(data):
        d = zlib.decompressobj(31)
        members.append(d.decompress(bytes(data[pos:])))
        pos = len(data) - len(d.unused_data)
    jpeg = jpeg_bytes(1)
    members = [m.replace(jpeg[200:240], bytes(40)) for m in members]
    warc.write_bytes(b"".join(gzip.compress(m) for m in members))
    res = verify_store(str(store))
    assert len(res.problems or []) == 1 and "hashes to" in (res.problems or [""])[0]
    assert main(["verify", "--store", str(store)]) == 1


def test_hash_only_keeps_no_media_bodies(tmp_path: Path, server: LoopbackServer) -> None:
    store = tmp_path / "w.db"
    page_url, direct = server.url("/page.html"), server.url("/other.jpg")
    add(store, [page_url, direct])
    opts = CheckOptions(**{**OPTS.__dict__, "hash_only": True})
    assert {r["status"] for r in check(store, opts).values()} == {"live"}
    blob = b"".join(p.read_bytes() for p in evidence_root(str(store), None).rglob("*.warc.gz"))
    import gzip

    text = gzip.decompress(blob)
    for media in (jpeg_bytes(1), jpeg_bytes(2), server.routes["/clip.mp4"].body):
        assert media[100:200] not in text
    assert b"<video" in text  # the page itself is kept
    media = last_media(store, page_url) + last_media(store, direct)
    assert all(m["sha256"] and m["pdq"] and not m["body_kept"] for m in media)
    res = verify_store(str(store))
    assert res.ok == res.checked and res.checked >= 3


def test_restart_refetches_only_urls_in_flight(tmp_path: Path, server: LoopbackServer) -> None:
    store = tmp_path / "w.db"
    urls = [server.url(f"/p{i}.html") for i in range(6)]
    for i in range(6):
        server.routes[f"/p{i}.html"] = Route(body=page("/pic.jpg"))
    add(store, urls)
    with Store(store) as st, open_checker(str(store), OPTS) as checker:
        ids = [u["id"] for u in st.urls()]
        st.claim(ids[:2], "2000-01-01T00:00:00.000000Z")  # a run killed with these two in flight
        assert sum(run_pass(st, checker, PassSettings(workers=2)).values()) == 4  # the others were recorded
    before = sum(server.hits.values())
    counts = check_store(str(store), OPTS, due_only=True)  # the next run: claims released
    assert counts == {"live": 2}
    assert sum(server.hits.values()) - before == 2 * 2  # those two pages and their pictures, nothing else
    assert check_store(str(store), OPTS, due_only=True) == {}


def test_cli_add_check_report(tmp_path: Path, server: LoopbackServer, capsys: pytest.CaptureFixture[str]) -> None:
    server.routes["/=cmd.html"] = Route(body=page("/pic.jpg"))
    src = tmp_path / "urls.csv"
    rows = [
        ["url", "note", "reported_at"],
        [server.url("/page.html"), '=HYPERLINK("x")', "2026-01-02T03:04:05Z"],
        [server.url("/page.html#frag"), "dup", ""],
        [server.url("/=cmd.html"), "", "2026-01-02"],
        ["ftp://example.org/x", "", ""],
        ["http://exa mple.org/\x01", "", ""],
        [server.url("/x"), "", "not a date"],
    ]
    with src.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)
    store = tmp_path / "w.db"
    assert main(["add", str(src), "--store", str(store), "--case", "c1"]) == 0
    out = capsys.readouterr()
    assert "added 2" in out.out and "duplicates in the file 1" in out.out and out.err.count("refused:") == 3
    assert main(["add", str(src), "--store", str(store), "--case", "c1"]) == 0
    assert "added 0, already present 2" in capsys.readouterr().out
    assert main(["check", "--store", str(store), "--due", "--allow-host", "127.0.0.1", "--host-rate", "0"]) == 0
    assert "live 2" in capsys.readouterr().out
    assert main(["check", "--store", str(store), "--due", "--allow-host", "127.0.0.1"]) == 0
    assert "nothing due" in capsys.readouterr().out
    report = tmp_path / "r.csv"
    assert main(["report", "--store", str(store), "--format", "csv", "-o", str(report)]) == 0
    with report.open(encoding="utf-8") as fh:
        got = list(csv.DictReader(fh))
    assert len(got) == 2 and got[0]["note"].startswith("'=") and got[0]["status"] == "live"
    assert got[0]["reported_at"] == "2026-01-02T03:04:05.000000Z" and len(got[0]["media_sha256"].split()) == 2
    html = tmp_path / "r.html"
    assert main(["report", "--store", str(store), "--format", "html", "-o", str(html), "--case", "c1"]) == 0
    text = html.read_text(encoding="utf-8")
    assert "HYPERLINK(&quot;x&quot;)" in text and "<script" not in text
    assert main(["verify", "--store", str(store)]) == 0
    # usage errors: one line, exit 2
    assert main(["add", str(src), "--store", str(store), "--case", "../x"]) == 2
    assert main(["check", "--store", str(tmp_path / "none.db")]) == 2
    bad = tmp_path / "bad.csv"
    bad.write_text("link\nhttp://a/\n")
    assert main(["add", str(bad), "--store", str(store)]) == 2
    (tmp_path / "notadb.db").write_bytes(os.urandom(4096))
    assert main(["report", "--store", str(tmp_path / "notadb.db"), "--format", "csv", "-o", str(report)]) == 2
    assert main(["run", "--store", str(store), "--every", "soon"]) == 2
    assert "error:" in capsys.readouterr().err


def test_platform_pages_through_yt_dlp(tmp_path: Path, server: LoopbackServer) -> None:
    pytest.importorskip("yt_dlp", reason="yt-dlp not installed (pip install 'deepdetect[platforms]')")
    import json

    ld = {"@context": "https://schema.org", "@type": "VideoObject", "name": "v", "contentUrl": server.url("/clip.mp4")}
    script = f'<script type="application/ld+json">{json.dumps(ld)}</script>'
    server.routes["/watch"] = Route(
        body=f"<html><head><title>v</title>{script}</head><body>player</body></html>".encode()
    )
    store = tmp_path / "w.db"
    url = server.url("/watch")
    add(store, [url])
    assert check(store)[url]["status"] == "live" and last_media(store, url) == []  # no media tags: nothing found
    rows = check(store, CheckOptions(**{**OPTS.__dict__, "platform_extractor": True}))
    (media,) = last_media(store, url)
    assert rows[url]["status"] == "live" and media["found_by"] == "yt-dlp" and media["kind"] == "video"
