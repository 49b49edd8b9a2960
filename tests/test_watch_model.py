"""deepdetect-watch with the known-content index and a detector: media matched through hashing's public functions
and scored through predict's (a tiny ONNX model exported inside the test)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from deepdetect.cli.watch import main
from deepdetect.hashing import api as hashing_api
from deepdetect.hashing.index import HashIndex
from watch_server import LoopbackServer, Route, jpeg_bytes, loopback_server, page

LOCAL = ["--allow-host", "127.0.0.1", "--host-rate", "0", "--timeout", "5"]


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with loopback_server() as srv:
        yield srv


def add_urls(tmp_path: Path, store: Path, urls: list[str]) -> None:
    src = tmp_path / "urls.csv"
    src.write_text("url\n" + "\n".join(urls) + "\n", encoding="utf-8")
    assert main(["add", str(src), "--store", str(store)]) == 0


def read_report(path: Path) -> dict[str, dict[str, str]]:
    with path.open(encoding="utf-8") as fh:
        return {r["url"]: r for r in csv.DictReader(fh)}


def test_known_content_matched_on_a_page(tmp_path: Path, server: LoopbackServer) -> None:
    from skimage.data import chelsea

    known = tmp_path / "known.jpg"
    Image.fromarray(chelsea()).resize((200, 150)).save(known, quality=95)
    index = tmp_path / "known.db"
    with HashIndex(index, create=True) as idx:
        added, _, failed = hashing_api.add_records(idx, hashing_api.records_for([known]), "ncii", ref="case-1-item-1")
    assert added == 1 and not failed
    reupload = Image.open(known).resize((160, 120))  # re-encoded and resized: a different file, the same picture
    buf = io.BytesIO()
    reupload.save(buf, format="JPEG", quality=70)
    server.routes.update(
        {
            "/re.jpg": Route(body=buf.getvalue(), content_type="image/jpeg"),
            "/unrelated.jpg": Route(body=jpeg_bytes(9, size=128), content_type="image/jpeg"),
            "/a.html": Route(body=page("/re.jpg")),
            "/b.html": Route(body=page("/unrelated.jpg")),
        }
    )
    store = tmp_path / "w.db"
    add_urls(tmp_path, store, [server.url("/a.html"), server.url("/b.html")])
    assert main(["check", "--store", str(store), "--index", str(index), *LOCAL]) == 0
    out = tmp_path / "r.csv"
    assert main(["report", "--store", str(store), "--format", "csv", "-o", str(out)]) == 0
    rows = read_report(out)
    assert rows[server.url("/a.html")]["known_match"].startswith("case-1-item-1 (ncii, d=")
    assert rows[server.url("/b.html")]["known_match"] == ""
    assert rows[server.url("/a.html")]["max_score"] == ""  # no model given


@pytest.mark.slow
def test_media_scored_with_a_tiny_onnx_model(tmp_path: Path, server: LoopbackServer) -> None:
    from skimage.data import astronaut

    from deepdetect.export.pipeline import export
    from test_export import export_cfg, make_tiny_checkpoint

    ckpt = make_tiny_checkpoint(tmp_path / "run")
    export(export_cfg(ckpt, tmp_path / "ex"))
    buf = io.BytesIO()
    Image.fromarray(astronaut()).save(buf, format="JPEG")
    server.routes["/face.jpg"] = Route(body=buf.getvalue(), content_type="image/jpeg")
    server.routes["/p.html"] = Route(body=page("/face.jpg"))
    store = tmp_path / "w.db"
    add_urls(tmp_path, store, [server.url("/p.html")])
    model = tmp_path / "ex" / "model.onnx"
    assert main(["check", "--store", str(store), "--model", str(model), *LOCAL]) == 0
    out = tmp_path / "r.csv"
    assert main(["report", "--store", str(store), "--format", "csv", "-o", str(out)]) == 0
    row = read_report(out)[server.url("/p.html")]
    assert row["status"] == "live" and 0.0 <= float(row["max_score"]) <= 1.0
    assert row["labels"] in ("fake", "real")
    assert main(["check", "--store", str(store), "--model", str(tmp_path / "none.onnx"), *LOCAL]) == 2
