"""The analysts' triage report (deepdetect.triage, deepdetect-report): records in, one self-contained page out.

Records are built by hand (and through predict's own RecordWriter) around tiny generated images and videos. The
browser tests run Debian's Chromium headless when it is installed and skip with the reason otherwise.
"""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import socket
import struct
import subprocess
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from deepdetect.cli.report_triage import main as report_main
from deepdetect.inference.writers import RecordWriter
from deepdetect.media import read_video_frames_at
from deepdetect.triage.provenance import C2PA_UUID, probe_provenance
from deepdetect.triage.records import read_records
from deepdetect.triage.render import esc, frame_scores, score_strip
from deepdetect.triage.report import build_report, build_report_from
from deepdetect.triage.summary import sort_key, summarise
from deepdetect.triage.thumbs import embed_image, thumbnail
from media_corpus import frame_index_of, make_video

EVIL = "<img src=x onerror=\"document.title='pwned'\">.jpg"


# ------------------------------------------------------------------------------------------------------- helpers


def record(path: Path | str, score: float | None = 0.5, **kw: Any) -> dict[str, Any]:
    """A predict record as `score_file` writes it (threshold 0.5), overridable field by field."""
    rec: dict[str, Any] = {
        "path": str(path),
        "path_bytes_b64": None,
        "sha256": "ab" * 32,
        "kind": "image",
        "status": "ok" if score is not None else "no_face",
        "score": score,
        "label": None if score is None else ("fake" if score >= 0.5 else "real"),
        "threshold": 0.5,
        "n_frames": 1,
        "n_faces": 0,
        "faces": [],
        "model_name": "test_efficientnet",
        "model_version": "abc123",
        "seconds": 0.1,
        "error": None,
    }
    rec.update(kw)
    return rec


def write_jsonl(path: Path, records: list[dict[str, Any]], tail: str = "") -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + tail, encoding="utf-8")
    return path


def save_jpeg(path: Path, size: tuple[int, int] = (160, 120), colour: tuple[int, int, int] = (90, 120, 160)) -> Path:
    img = Image.new("RGB", size, colour)
    exif = Image.Exif()
    exif[0x0131] = "FaceSwapper 2.1"  # Software
    exif[0x010F] = "ACME"  # Make
    exif[0x0110] = "Cam 1"  # Model
    img.save(path, format="JPEG", exif=exif, quality=95)
    return path


def decode_uri(uri: str) -> np.ndarray:
    assert uri.startswith("data:image/jpeg;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).convert("RGB"))


def rows_in_order(page: str) -> list[str]:
    """The escaped names of the file rows, in page order."""
    return re.findall(r'<div class="name">(.*?)</div>', page)


def run_header(val_tpr: float | None, val_fpr: float = 0.01, threshold: float = 0.5) -> dict[str, Any]:
    return {
        "run_id": "run-1",
        "started": "2025-01-01T00:00:00Z",
        "tool_version": "0.1.0",
        "model": {
            "model": {"name": "test_efficientnet"},
            "calibration": {
                "temperature": 1.2,
                "threshold": threshold,
                "threshold_rule": "fpr",
                "target_fpr": 0.01,
                "val_fpr": val_fpr,
                "val_tpr": val_tpr,
            },
            "training_data": {"sources": {"faceswap-dfl": {"fake": 10, "real": 12}}, "sbi": "off"},
        },
    }


# ------------------------------------------------------------------------------------------------ page content


def test_malicious_name_stays_text(tmp_path: Path) -> None:
    evil = save_jpeg(tmp_path / EVIL)
    recs = [record(evil, 0.9, error="<script>alert(2)</script>", status="ok", model_name="<b>m</b>")]
    page = build_report(write_jsonl(tmp_path / "p.jsonl", recs), tmp_path / "r.html").read_text(encoding="utf-8")
    assert "<img src=x" not in page and "<script>alert" not in page and "<b>m</b>" not in page
    assert esc(EVIL) in page and "&lt;img src=x onerror=&quot;document.title=&#x27;pwned&#x27;&quot;&gt;.jpg" in page
    assert page.count("<script>") == 1  # only the page's own filter script


def test_page_makes_no_external_reference(tmp_path: Path) -> None:
    img = save_jpeg(tmp_path / "a.jpg")
    video = make_video(tmp_path / "v.mp4", 12, size=(64, 48))
    faces = [
        {"frame_index": i, "time_s": i / 10, "box": [2, 2, 30, 30], "det_score": 0.99, "score": 0.3} for i in (0, 6)
    ]
    recs = [
        record(img, 0.7, faces=[{"frame_index": 0, "box": [10, 10, 60, 60], "det_score": 0.99, "score": 0.7}]),
        record(video, 0.3, kind="video", faces=faces, known_match={"label": "ncii", "ref": "http://evil.test/x"}),
        record(tmp_path / "gone.jpg", None, status="not_found", error="file not found"),
    ]
    page = build_report(write_jsonl(tmp_path / "p.jsonl", recs), tmp_path / "r.html").read_text(encoding="utf-8")
    assert "http://evil.test/x" in page  # shown as text (escaped), never as a link
    assert not re.search(r"""<[^>]+\s(src|href|action|poster|srcset)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert not re.search(r"url\(\s*['\"]?\s*(https?:)?//", page, re.I) and "@import" not in page
    assert not re.search(r"<link\b", page, re.I) and "<iframe" not in page
    assert all(s.startswith("data:") for s in re.findall(r'\ssrc="([^"]*)"', page))
    assert "default-src 'none'" in page and "img-src data:" in page  # the CSP forbids any network load
    assert len(re.findall(r'src="data:image/jpeg', page)) == 2  # image and video thumbnails embedded


def test_rows_sorted_by_score_failures_last(tmp_path: Path) -> None:
    recs = [
        record(tmp_path / "low.jpg", 0.2),
        record(tmp_path / "broken.mp4", None, status="unreadable", kind="video"),
        record(tmp_path / "noface.jpg", None),
        record(tmp_path / "high.jpg", 0.95),
        record(tmp_path / "mid.jpg", 0.5),
    ]
    page = build_report(write_jsonl(tmp_path / "p.jsonl", recs), tmp_path / "r.html", thumbnails=False)
    names = rows_in_order(page.read_text(encoding="utf-8"))
    assert names == ["high.jpg", "mid.jpg", "low.jpg", "noface.jpg", "broken.mp4"]
    assert sorted(recs, key=sort_key)[0]["path"].endswith("high.jpg")


def test_low_validation_tpr_is_a_plain_warning(tmp_path: Path) -> None:
    recs = write_jsonl(tmp_path / "p.jsonl", [record(tmp_path / f"{i}.jpg", 0.1) for i in range(3)])
    header = tmp_path / "p.jsonl.run.json"
    header.write_text(json.dumps(run_header(val_tpr=0.03)))
    page = build_report(recs, tmp_path / "r.html", thumbnails=False).read_text(encoding="utf-8")
    assert "caught only 3% of the fakes" in page and "validation TPR 0.030" in page
    assert "test_efficientnet" in page and "faceswap-dfl (fake 10, real 12)" in page and "run-1" in page
    header.write_text(json.dumps(run_header(val_tpr=0.93)))  # control: a model that catches most fakes
    page = build_report(recs, tmp_path / "r.html", thumbnails=False).read_text(encoding="utf-8")
    assert "caught only" not in page and "0.930" in page
    header.unlink()  # no figures anywhere: say that the catch rate is unknown
    page = build_report(recs, tmp_path / "r.html", thumbnails=False).read_text(encoding="utf-8")
    assert "how many fakes this model catches" in page


def test_operating_point_from_records_beats_the_models(tmp_path: Path) -> None:
    op = {"threshold": 0.8, "source": "--fpr 0.001", "target_fpr": 0.001, "val_fpr": 0.001, "val_tpr": 0.2}
    recs = [record(tmp_path / "a.jpg", 0.6, threshold=0.8, label="real", operating_point=op)]
    s = summarise(recs, run_header(val_tpr=0.9))
    assert s.operating_point["threshold"] == 0.8 and s.operating_point["source"] == "--fpr 0.001"
    assert any("caught only 20%" in w for w in s.warnings)  # the point in use, not the model's default, counts


def test_one_sided_batch_warning(tmp_path: Path) -> None:
    one_sided = [record(tmp_path / f"{i}.jpg", 0.1) for i in range(12)]
    s = summarise(one_sided, run_header(val_tpr=0.9))
    assert any("100% of the 12 scored files are labelled 'real'" in w for w in s.warnings)
    mixed = [record(tmp_path / f"{i}.jpg", 0.1 if i % 2 else 0.9) for i in range(12)]
    assert not any("one-sided" in w for w in summarise(mixed, run_header(val_tpr=0.9)).warnings)
    few = [record(tmp_path / f"{i}.jpg", 0.1) for i in range(3)]  # too few files to call it one-sided
    assert not any("one-sided" in w for w in summarise(few, run_header(val_tpr=0.9)).warnings)


def test_truncated_last_line_and_bad_lines_are_counted(tmp_path: Path) -> None:
    good = [record(tmp_path / "a.jpg", 0.9), record(tmp_path / "b.jpg", 0.1)]
    path = tmp_path / "p.jsonl"
    path.write_text(
        json.dumps(good[0]) + "\nnot json\n[1, 2]\n" + json.dumps(good[1]) + "\n" + json.dumps(good[0])[:40],
        encoding="utf-8",
    )
    rs = read_records(path)
    assert [r["path"] for r in rs.records] == [good[0]["path"], good[1]["path"]]
    assert rs.truncated_last_line and rs.bad_lines == [2, 3]
    page = build_report(path, tmp_path / "r.html", thumbnails=False).read_text(encoding="utf-8")
    assert "last line of the records file is incomplete" in page and "2 line(s)" in page and "(line 2, 3)" in page


def test_wrong_types_are_nulled_not_fatal(tmp_path: Path) -> None:
    bad = record(tmp_path / "a.jpg", 0.5, n_faces="many", faces=[{"box": "x"}, 7], score_interval=[0.1])
    bad["score"] = "0.9; DROP TABLE"
    rs = read_records(write_jsonl(tmp_path / "p.jsonl", [bad, record(tmp_path / "b.jpg", 2.5)]))
    assert rs.records[0]["score"] is None and rs.records[0]["n_faces"] is None and rs.records[0]["faces"] == []
    assert rs.records[1]["score"] is None  # out of 0..1
    assert rs.coerced_fields == 6
    build_report_from(rs, tmp_path / "r.html")  # renders


def test_csv_records_from_predicts_writer(tmp_path: Path) -> None:
    img = save_jpeg(tmp_path / "=cmd.jpg")
    face = {"frame_index": 0, "box": [10.0, 10.0, 50.0, 50.0], "det_score": 0.99, "score": 0.8}
    with RecordWriter(tmp_path / "p.csv") as w:
        w.write(record(img, 0.8, faces=[face], n_faces=1))
        w.write(record(tmp_path / "x.mp4", None, status="unreadable", kind="video"))
    text = (tmp_path / "p.csv").read_text(encoding="utf-8")
    (tmp_path / "p.csv").write_text(text + text.splitlines()[1][:30], encoding="utf-8")  # a half-written row
    rs = read_records(tmp_path / "p.csv")
    assert rs.truncated_last_line and len(rs.records) == 2
    first = rs.records[0]
    assert first["path"] == str(img) and first["score"] == 0.8 and first["faces"][0]["box"] == face["box"]
    page = build_report_from(rs, tmp_path / "r.html").path.read_text(encoding="utf-8")
    assert "=cmd.jpg" in page and page.count('src="data:image/jpeg') == 1


def test_top_n_rows_embed_the_rest_are_compact(tmp_path: Path) -> None:
    imgs = [save_jpeg(tmp_path / f"{i}.jpg") for i in range(5)]
    recs = write_jsonl(tmp_path / "p.jsonl", [record(p, 0.1 * (i + 1)) for i, p in enumerate(imgs)])
    page = build_report(recs, tmp_path / "r.html", top_n=2).read_text(encoding="utf-8")
    assert page.count('src="data:image/jpeg') == 2 and page.count('class="row compact"') == 3
    assert rows_in_order(page)[:2] == ["4.jpg", "3.jpg"]  # the embedded rows are the highest scores


def test_relative_paths_resolve_beside_the_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    batch = tmp_path / "batch"
    batch.mkdir()
    save_jpeg(batch / "a.jpg")
    Image.new("RGB", (32, 32)).save(batch / "a.expl.png")
    recs = write_jsonl(batch / "p.jsonl", [record("a.jpg", 0.9, explanation="a.expl.png")])  # as predict ran in batch/
    monkeypatch.chdir(tmp_path)  # the report is built from elsewhere
    page = build_report(recs, tmp_path / "r.html").read_text(encoding="utf-8")
    assert page.count('src="data:image/jpeg') == 2 and "JPEG" in page  # thumbnail, explanation, provenance


# ---------------------------------------------------------------------------------------- thumbnails and strips


def test_image_thumbnail_draws_boxes_coloured_by_threshold(tmp_path: Path) -> None:
    img = save_jpeg(tmp_path / "a.jpg", size=(480, 360), colour=(128, 128, 128))
    faces = [
        {"frame_index": 0, "box": [40, 40, 200, 200], "det_score": 0.99, "score": 0.9},
        {"frame_index": 0, "box": [260, 100, 440, 300], "det_score": 0.99, "score": 0.1},
    ]
    thumb = thumbnail(record(img, 0.9, faces=faces))
    assert thumb.uri and (thumb.width, thumb.height) == (240, 180)
    arr = decode_uri(thumb.uri).astype(int)
    left_edge_fake, left_edge_real = arr[60, 20], arr[90, 130]  # x = box x1 / 2, inside its vertical extent
    assert left_edge_fake[0] > 170 and left_edge_fake[1] < 90  # red: score >= threshold
    assert left_edge_real[1] > 130 and left_edge_real[0] < 90  # green: below it
    assert abs(arr[175, 5] - 128).max() < 12  # untouched background
    big = save_jpeg(tmp_path / "big.jpg", size=(1920, 1440), colour=(128, 128, 128))  # decoded at 1/4 (draft)
    scaled = [{**f, "box": [v * 4 for v in f["box"]]} for f in faces]
    assert np.abs(decode_uri(thumbnail(record(big, 0.9, faces=scaled)).uri).astype(int) - arr).max() < 40
    Image.open(img).save(tmp_path / "a.png")  # not JPEG: decoded whole by media.load_image
    assert np.abs(decode_uri(thumbnail(record(tmp_path / "a.png", 0.9, faces=faces)).uri).astype(int) - arr).max() < 40


def test_video_thumbnail_is_the_best_faces_frame(tmp_path: Path) -> None:
    video = make_video(tmp_path / "v.mp4", 30, size=(96, 96))
    faces = [
        {"frame_index": i, "time_s": i / 10, "box": [1, 1, 12, 12], "det_score": 0.99, "score": s}
        for i, s in ((3, 0.2), (17, 0.95), (25, 0.4))
    ]
    thumb = thumbnail(record(video, 0.5, kind="video", faces=faces))
    assert thumb.uri and thumb.caption == "frame 17 (1.70 s)"
    assert frame_index_of(decode_uri(thumb.uri)) == 17


def test_read_video_frames_at_seeks_to_the_asked_frames(tmp_path: Path) -> None:
    video = make_video(tmp_path / "v.mp4", 120, gop_size=10, size=(48, 48))
    got = read_video_frames_at(video, [100, 60, 100, 400])  # sorted, deduplicated, past-the-end skipped; seeks
    assert [i for i, _ in got] == [60, 100] and [frame_index_of(f) for _, f in got] == [60, 100]
    assert [frame_index_of(f) for _, f in read_video_frames_at(video, [3])] == [3]  # one pass from the start
    assert read_video_frames_at(video, []) == []


def test_missing_and_broken_files_get_placeholders(tmp_path: Path) -> None:
    assert thumbnail(record(tmp_path / "gone.jpg", None)).note == "file not found"
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00garbage" * 50)
    broken = thumbnail(record(junk, None, kind="video"))
    assert broken.uri is None and broken.note and broken.note.startswith("no preview")
    assert embed_image(tmp_path / "none.png").uri is None
    page = build_report(
        write_jsonl(tmp_path / "p.jsonl", [record(tmp_path / "gone.jpg", None, status="not_found"), record(junk, 0.4)]),
        tmp_path / "r.html",
    ).read_text(encoding="utf-8")
    assert 'class="ph">file not found' in page and 'class="ph">no preview' in page


def test_explanation_image_is_embedded(tmp_path: Path) -> None:
    heat = tmp_path / "a.gradcam.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (96, 96, 3), dtype=np.uint8)).save(heat)
    recs = [record(save_jpeg(tmp_path / "a.jpg"), 0.9, explanation=str(heat))]
    recs.append(record(save_jpeg(tmp_path / "b.jpg"), 0.8, explanation=str(tmp_path / "missing.png")))
    page = build_report(write_jsonl(tmp_path / "p.jsonl", recs), tmp_path / "r.html").read_text(encoding="utf-8")
    assert page.count('alt="explanation"') == 1 and "explanation not readable" in page


def test_score_strip_per_frame_max_with_threshold(tmp_path: Path) -> None:
    faces = [
        {"frame_index": 0, "time_s": 0.0, "score": 0.1},
        {"frame_index": 0, "time_s": 0.0, "score": 0.3},  # two faces in one frame: the max counts
        {"frame_index": 50, "time_s": 2.0, "score": 0.9},
        {"frame_index": 100, "time_s": 4.0, "score": 0.2},
    ]
    assert frame_scores(faces) == [(0.0, 0.3, True), (2.0, 0.9, True), (4.0, 0.2, True)]
    svg = score_strip({"faces": faces, "threshold": 0.5})
    assert svg.count("<circle") == 3 and "threshold 0.500" in svg and "4.0 s" in svg
    assert svg.count('fill="#c62828"') == 1  # one frame over the threshold
    no_time = [{k: v for k, v in f.items() if k != "time_s"} for f in faces]
    assert "frame 100" in score_strip({"faces": no_time, "threshold": 0.5})


# ------------------------------------------------------------------------------------------------- provenance


def _png_with_chunk(path: Path, kind: bytes, data: bytes) -> Path:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(buf, format="PNG")
    raw = buf.getvalue()
    chunk = struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    at = raw.index(b"IDAT") - 4
    path.write_bytes(raw[:at] + chunk + raw[at:])
    return path


def test_provenance_of_images_and_c2pa_markers(tmp_path: Path) -> None:
    jpeg = probe_provenance(save_jpeg(tmp_path / "a.jpg"))
    assert jpeg["format"] == "JPEG" and (jpeg["width"], jpeg["height"]) == (160, 120)
    assert jpeg["exif_software"] == "FaceSwapper 2.1" and jpeg["exif_make"] == "ACME" and jpeg["c2pa"] is False
    raw = (tmp_path / "a.jpg").read_bytes()
    jumbf = b"JP\x00\x01\x00\x00\x00\x01" + b"\x00\x00\x00\x20jumb\x00\x00\x00\x18jumdc2pa" + b"\x00" * 8
    app11 = b"\xff\xeb" + struct.pack(">H", len(jumbf) + 2) + jumbf
    (tmp_path / "signed.jpg").write_bytes(raw[:2] + app11 + raw[2:])
    signed = probe_provenance(tmp_path / "signed.jpg")
    assert signed["c2pa"] is True and signed["c2pa_checked"] == "JPEG APP11 segments" and signed["format"] == "JPEG"
    assert probe_provenance(_png_with_chunk(tmp_path / "s.png", b"caBX", b"jumb....c2pa"))["c2pa"] is True
    png = probe_provenance(_png_with_chunk(tmp_path / "g.png", b"tEXt", b"parameters\x00a cat, steps 20"))
    assert png["c2pa"] is False and png["generator_parameters"] == "a cat, steps 20"


def test_provenance_of_videos(tmp_path: Path) -> None:
    video = make_video(tmp_path / "v.mp4", 20, fps=10, size=(48, 64))  # (height, width)
    prov = probe_provenance(video)
    assert prov["codec"] == "mpeg4" and (prov["width"], prov["height"]) == (64, 48) and prov["fps"] == 10
    assert "mp4" in prov["format"] and abs(prov["duration_s"] - 2.0) < 0.2 and prov["encoder"].startswith("Lavf")
    assert prov["c2pa"] is False and prov["c2pa_checked"] == "ISO-BMFF top-level boxes"
    box = struct.pack(">I", 8 + 16 + 4) + b"uuid" + C2PA_UUID + b"\x00" * 4
    (tmp_path / "c.mp4").write_bytes(video.read_bytes() + box)
    assert probe_provenance(tmp_path / "c.mp4")["c2pa"] is True


def test_provenance_never_raises(tmp_path: Path) -> None:
    assert probe_provenance(tmp_path / "missing.mp4") == {"error": "file not found: missing.mp4"}
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00\x00\x00\x08ftyp" + b"\xff" * 100)
    out = probe_provenance(junk)
    assert "error" in out and out["size_bytes"] == 108
    assert "error" in probe_provenance(tmp_path)  # a folder


# ------------------------------------------------------------------------------------------------------- CLI


def test_cli_writes_the_page_and_refuses_missing_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert report_main([str(tmp_path / "nope.jsonl"), "-o", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "records file not found" in err
    recs = write_jsonl(tmp_path / "p.jsonl", [record(tmp_path / "a.jpg", 0.7)], tail='{"path": "b.j')
    assert report_main([str(recs), "--no-thumbnails"]) == 0
    out = tmp_path / "p.jsonl.triage.html"
    assert out.is_file() and "a.jpg" in out.read_text(encoding="utf-8")
    assert "incomplete" in capsys.readouterr().err
    assert report_main([str(write_jsonl(tmp_path / "empty.jsonl", [])), "-o", str(tmp_path / "e.html")]) == 1
    with pytest.raises(SystemExit) as exc:
        report_main(["--help"])
    assert exc.value.code == 0 and "docs/triage.md" in capsys.readouterr().out


# ----------------------------------------------------------------------------------------- in a real browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install chromium)"
)
# Chromium's own service probes (component updater, sign-in, network time) happen for any page, about:blank
# included; they are the browser's, not the page's, so the request log ignores exactly these hosts.
BROWSER_OWN_HOSTS = {"update.googleapis.com", "accounts.google.com", "clients2.google.com"}


@pytest.fixture
def recording_proxy() -> Iterator[tuple[int, list[str]]]:
    """A local HTTP proxy that answers 404 to everything and records each request line (the page's traffic)."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(32)
    seen: list[str] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                try:
                    seen.append(conn.recv(4096).split(b"\r\n", 1)[0].decode("latin-1"))
                    conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], seen
    server.close()


def dump_dom(page: Path, proxy_port: int, profile: Path, fragment: str = "") -> str:
    """The DOM after the page's scripts ran, in headless Chromium with every request sent to the local proxy."""
    assert CHROMIUM is not None
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        f"--proxy-server=http://127.0.0.1:{proxy_port}",
        "--proxy-bypass-list=<-loopback>",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-features=NetworkTimeServiceQuerying,OptimizationHints,Translate,MediaRouter",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=3000",
        "--dump-dom",
        page.resolve().as_uri() + fragment,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def page_requests(seen: list[str]) -> list[str]:
    hosts = [re.sub(r"^(CONNECT |[A-Z]+ https?://)([^/:\s]+).*$", r"\2", line) for line in seen]
    return [line for line, host in zip(seen, hosts, strict=True) if host not in BROWSER_OWN_HOSTS]


@needs_chromium
def test_browser_renders_without_network_and_keeps_the_evil_name_text(
    tmp_path: Path, recording_proxy: tuple[int, list[str]]
) -> None:
    port, seen = recording_proxy
    control = tmp_path / "control.html"  # proves the proxy sees what a page fetches
    control.write_text(
        '<img src="http://cdn.example.test/x.png"><link rel="stylesheet" href="https://fonts.example.test/c">'
    )
    dump_dom(control, port, tmp_path / "profile")
    time.sleep(0.2)
    assert any("cdn.example.test" in r for r in page_requests(seen)), seen
    seen.clear()

    evil = save_jpeg(tmp_path / EVIL)
    video = make_video(tmp_path / "v.mp4", 12, size=(64, 48))
    faces = [{"frame_index": i, "time_s": i / 10, "box": [2, 2, 30, 30], "score": 0.2 + 0.05 * i} for i in (0, 6)]
    recs = [
        record(evil, 0.91),
        record(video, 0.4, kind="video", faces=faces),
        record(tmp_path / "gone.jpg", None, status="not_found", error="<b>x</b>"),
    ]
    page = build_report(write_jsonl(tmp_path / "p.jsonl", recs), tmp_path / "r.html", title="triage")
    dom = dump_dom(page, port, tmp_path / "profile")
    time.sleep(0.2)
    assert page_requests(seen) == []
    assert 'data-ready="1"' in dom and "3 of 3 files shown" in dom  # the filter script ran
    assert "<title>triage</title>" in dom and "pwned" not in re.search(r"<title>.*?</title>", dom).group(0)
    as_text = EVIL.replace("<", "&lt;").replace(">", "&gt;")  # how a browser serialises it as a text node
    assert f'<div class="name">{as_text}</div>' in dom and '<img src="x"' not in dom
    assert len(re.findall(r'<div class="row[^"]*" role="row" data-status=', dom)) == 3

    filtered = dump_dom(page, port, tmp_path / "profile", "#status=ok&label=fake")
    assert "1 of 3 files shown" in filtered
    visible = re.findall(r'role="row" data-status="([^"]+)" data-label="([^"]+)"[^>]*?(hidden="")?>', filtered)
    assert sorted(v[:2] for v in visible if not v[2]) == [("ok", "fake")] and len(visible) == 3


# ------------------------------------------------------------------------------- what an analyst must see first


def test_known_content_matches_come_first_counted_with_label_and_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = "0123456789abcdef" * 4  # a 64-hex sha256 reference
    match = {"ref": ref, "label": "ncii", "source": "case-1234", "distance": 4, "via": "original", "is_match": True}
    recs = [
        record(tmp_path / "high.jpg", 0.97),
        record(tmp_path / "known.jpg", 0.1, known_match=match),
        record(tmp_path / "near.jpg", 0.5, known_match={**match, "is_match": False}),  # a near miss is no match
        record(tmp_path / "known-noface.jpg", None, known_match=match),
    ]
    records = write_jsonl(tmp_path / "p.jsonl", recs)
    assert report_main([str(records), "-o", str(tmp_path / "r.html"), "--no-thumbnails"]) == 0
    assert "known content 2;" in capsys.readouterr().err  # counted in the command's summary line
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert rows_in_order(page) == ["known.jpg", "known-noface.jpg", "high.jpg", "near.jpg"]
    assert "known content matches: <b>2</b>" in page and "2 file(s) match known content" in page
    assert "<b>label</b>: ncii" in page and "<b>source</b>: case-1234" in page
    assert f'<span title="{ref}">{ref[:16]}…</span>' in page  # the long hash is cut, whole on hover
    assert f">{ref}<" not in page


def test_score_in_plain_words_and_frame_min_max_named(tmp_path: Path) -> None:
    frames = [0.95, 0.97, 0.92] + [0.45] * 29  # 3 of 32 frames strongly fake
    faces = [{"frame_index": i, "time_s": i / 2, "box": [0, 0, 10, 10], "score": s} for i, s in enumerate(frames)]
    mean = sum(frames) / len(frames)
    video = record(tmp_path / "v.mp4", mean, kind="video", faces=faces, threshold=0.4, n_frames=32,
                   score_interval=[min(frames), max(frames)])  # fmt: skip
    recs = [
        video,
        record(tmp_path / "sure.jpg", 0.99),
        record(tmp_path / "edge.jpg", 0.45),
        record(tmp_path / "clean.jpg", 0.02),
    ]
    page = build_report(write_jsonl(tmp_path / "p.jsonl", recs), tmp_path / "r.html", thumbnails=False)
    text = page.read_text(encoding="utf-8")
    assert mean >= 0.4 and "likely fake — 3 of 32 frames strongly fake" in text
    assert "very likely fake" in text and "borderline: just under the threshold" in text
    assert "very likely real" in text
    assert "frame scores min–max [0.45–0.97]" in text and ">interval [" not in text
    assert 'id="numbers"' in text and "not a confidence interval" in text  # the page explains its numbers


@pytest.mark.parametrize(
    ("calibration", "expected"),
    [
        ({"val_fpr": 0.294}, "labels 29% of its own validation reals fake"),
        ({"target_fpr": 0.01, "n_val_real": 34}, "had only 34 real crops"),
        ({"failed": "temperature fitted at its upper bound (100)"}, "calibration failed"),
    ],
)
def test_a_model_its_own_validation_distrusts_gets_a_banner(
    tmp_path: Path, calibration: dict[str, Any], expected: str
) -> None:
    records = write_jsonl(tmp_path / "p.jsonl", [record(tmp_path / f"{i}.jpg", 0.6) for i in range(3)])
    header = run_header(val_tpr=0.9, val_fpr=0.02)
    header["model"]["calibration"].update(calibration)
    (tmp_path / "p.jsonl.run.json").write_text(json.dumps(header))
    page = build_report(records, tmp_path / "r.html", thumbnails=False).read_text(encoding="utf-8")
    assert 'id="trust"' in page and expected in page
    (tmp_path / "p.jsonl.run.json").write_text(json.dumps(run_header(val_tpr=0.9, val_fpr=0.02)))  # control
    page = build_report(records, tmp_path / "r.html", thumbnails=False).read_text(encoding="utf-8")
    assert 'id="trust"' not in page


def test_skipped_files_are_counted_not_failures(tmp_path: Path) -> None:
    recs = [record(tmp_path / "a.jpg", 0.2)] + [
        record(tmp_path / f"notes{i}.txt", None, status="skipped", error="not an image or video") for i in range(3)
    ]
    s = summarise(recs, run_header(val_tpr=0.9))
    assert s.statuses["skipped"] == 3 and not any("could not be read" in w for w in s.warnings)
    broken = [*recs, record(tmp_path / "x.mp4", None, status="unreadable")]
    assert any("1 of 2 files could not be read" in w for w in summarise(broken, run_header(val_tpr=0.9)).warnings)
