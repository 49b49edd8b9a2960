"""Perceptual hashing (issue 15): PDQ/vPDQ-style hashes, the SQLite known-content index, search engines, exchange."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

from deepdetect.hashing.exchange import format_vpdq, parse_vpdq, read_hash_list
from deepdetect.hashing.index import HashIndex, HashRow, IndexFileError, Item
from deepdetect.hashing.match import Matcher
from deepdetect.hashing.mih import MultiIndexHash, thresholds
from deepdetect.hashing.pdq import from_hex, hamming, hash_rgb, hash_rgb_dihedral
from deepdetect.hashing.records import hash_and_sample, hash_file
from deepdetect.hashing.search import BruteForce, make_searcher
from deepdetect.hashing.video import hash_video
from deepdetect.media import load_image, read_video, write_video
from media_corpus import make_bad_corpus

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _resize(img: np.ndarray, factor: float) -> np.ndarray:
    h, w = img.shape[:2]
    return np.asarray(Image.fromarray(img).resize((round(w * factor), round(h * factor)), Image.BILINEAR))


def _clip(path: Path, images: list[np.ndarray], seconds_each: float = 1.0, fps: int = 10) -> Path:
    frames = [img for img in images for _ in range(round(seconds_each * fps))]
    return write_video(path, frames, fps=fps)


def _pictures() -> list[np.ndarray]:
    """Distinct natural pictures at one size (from scikit-image's bundled data)."""
    out = []
    for img in (data.astronaut(), data.chelsea(), data.coffee(), data.rocket(), data.immunohistochemistry()):
        out.append(np.asarray(Image.fromarray(img).resize((160, 128))))
    return out


def test_pdq_survives_resize_and_separates_unrelated_images() -> None:
    astro = data.astronaut()
    h = hash_rgb(astro)
    assert len(h.bits) == 32 and len(h.hex) == 64 and from_hex(h.hex) == h.bits and h.quality >= 50
    assert hamming(h.bits, hash_rgb(_resize(astro, 0.5)).bits) <= 31
    assert hamming(h.bits, hash_rgb(data.camera()).bits) > 90
    tiny = hash_rgb(np.zeros((1, 1, 3), np.uint8))  # never crashes; featureless
    assert tiny.quality < 50


def test_dihedral_hashes_catch_flips_and_rotations() -> None:
    astro = data.astronaut()
    variants, _ = hash_rgb_dihedral(astro)
    flipped = hash_rgb(np.ascontiguousarray(astro[:, ::-1])).bits
    rotated = hash_rgb(np.ascontiguousarray(np.rot90(astro))).bits
    assert hamming(variants[0], flipped) > 31  # plain PDQ does not survive a mirror
    assert min(hamming(v, flipped) for v in variants) <= 31  # one of the 8 dihedral hashes does
    assert min(hamming(v, rotated) for v in variants) <= 31


def test_video_frames_sampled_per_second_and_deduplicated(tmp_path: Path) -> None:
    pics = _pictures()
    video = _clip(tmp_path / "v.mp4", [pics[0], pics[0], pics[1], pics[2]], fps=10)  # 4 s, two identical seconds
    vh = hash_video(video, fps=1.0)
    assert vh.n_sampled == 4
    assert [f.timestamp for f in vh.frames] == [0.0, 2.0, 3.0]  # second 1 repeats second 0: dropped
    assert [f.frame_index for f in vh.frames] == [0, 20, 30]
    assert len(hash_video(video, fps=1.0, dedup_distance=-1).frames) == 4
    line = format_vpdq([HashRow(f.frame_index, f.timestamp, f.quality, f.bits) for f in vh.frames]).splitlines()[1]
    number, quality, hexhash, ts = line.split(",")
    assert number == "20" and int(quality) >= 0 and len(hexhash) == 64 and ts == "2.000"


@pytest.mark.parametrize("frames", [3, 8, 200])
def test_one_decode_gives_the_hash_record_and_predicts_frames(tmp_path: Path, frames: int) -> None:
    pics = _pictures()
    video = _clip(tmp_path / "v.mp4", pics[:4], fps=10)  # 40 frames
    rec, got, fps = hash_and_sample(video, "video", frames)
    want, info = read_video(video, frames_per_video=frames)
    assert [i for i, _ in got] == [i for i, _ in want] and fps == info.fps
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(got, want, strict=True))
    alone = hash_file(video, dihedral=True)
    for key in ("kind", "status", "frames", "fps", "duration_s", "n_sampled", "sample_fps"):
        assert rec[key] == alone[key], key
    image = _save(data.astronaut(), tmp_path / "a.jpg")
    rec, got, fps = hash_and_sample(image, "image", frames)
    alone = hash_file(image, dihedral=True)
    assert (rec["pdq"], rec["quality"], rec["dihedral"]) == (alone["pdq"], alone["quality"], alone["dihedral"])
    assert len(got) == 1 and got[0][0] == 0 and np.array_equal(got[0][1], load_image(image)) and fps == 0.0


def test_bad_files_get_predict_statuses(tmp_path: Path) -> None:
    for name, (path, expected) in make_bad_corpus(tmp_path / "corpus").items():
        rec = hash_file(path)
        assert rec["status"] == expected, (name, rec)
        if expected == "ok":
            assert rec.get("pdq") or rec.get("frames"), name
    missing = hash_file(tmp_path / "nope.jpg")
    assert missing["status"] == "not_found"


def test_search_engines_agree_with_brute_force_at_the_threshold() -> None:
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 256, (3000, 32), dtype=np.uint8)
    queries = codes[:42].copy()
    for d, row in enumerate(queries):  # query d differs from stored row d in exactly d bits
        bits = np.unpackbits(row)
        bits[rng.choice(256, d, replace=False)] ^= 1
        queries[d] = np.packbits(bits)
    brute = make_searcher("brute", codes).search(queries, 31)
    for d, (ids, dist) in enumerate(brute):
        assert (d in ids.tolist()) == (d <= 31)
        assert dist.tolist() == sorted(dist.tolist())
    for name in ("flat", "mih", "faiss-mih"):
        got = make_searcher(name, codes).search(queries, 31)
        for (bi, bd), (gi, gd) in zip(brute, got, strict=True):
            assert bi.tolist() == gi.tolist() and bd.tolist() == gd.tolist(), name
    hnsw = make_searcher("hnsw", codes).search(queries, 31)
    assert sum(d in ids.tolist() for d, (ids, _) in enumerate(hnsw)) >= 30  # approximate, but finds most
    with pytest.raises(ValueError, match="unknown search engine"):
        make_searcher("nope", codes)


def _planted(rng: np.random.Generator, n: int, distances: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """`n` random hashes, and one query per distance d that differs from stored row i in exactly d bits."""
    codes = rng.integers(0, 256, (n, 32), dtype=np.uint8)
    queries = codes[: len(distances)].copy()
    for row, d in zip(queries, distances, strict=True):
        bits = np.unpackbits(row)
        bits[rng.choice(256, d, replace=False)] ^= 1
        row[:] = np.packbits(bits)
    return codes, queries


@pytest.mark.parametrize(("n_chunks", "threads"), [(16, 1), (12, 2)])
def test_multi_index_hashing_is_exactly_brute_force(n_chunks: int, threads: int) -> None:
    rng = np.random.default_rng(n_chunks)
    distances = [31] * 20 + [32] * 20 + list(range(0, 64, 3))
    codes, queries = _planted(rng, 4000, distances)
    # near-duplicates of the first queries sit in the index too: several hits per query at mixed distances
    for d in (5, 20, 30, 31, 32, 33):
        extra = queries[:10].copy()
        for row in extra:
            bits = np.unpackbits(row)
            bits[rng.choice(256, d, replace=False)] ^= 1
            row[:] = np.packbits(bits)
        codes = np.concatenate([codes, extra])
    mih = MultiIndexHash(codes, n_chunks=n_chunks, threads=threads)
    brute = BruteForce(codes)
    for max_distance in (0, 8, 31, 40):
        want = brute.search(queries, max_distance)
        got = mih.search(queries, max_distance)
        for (wi, wd), (gi, gd) in zip(want, got, strict=True):
            assert gi.tolist() == wi.tolist() and gd.tolist() == wd.tolist(), max_distance
    at31 = mih.search(queries, 31)
    for i, d in enumerate(distances):
        assert (i in at31[i][0].tolist()) == (d <= 31), (i, d)
    assert sum(len(ids) for ids, _ in at31) > len(queries)  # the planted near-duplicates were found as well
    assert [len(h[0]) for h in mih.search(queries[:0], 31)] == []
    empty = MultiIndexHash(codes[:0], n_chunks=n_chunks)
    assert [len(h[0]) for h in empty.search(queries[:3], 31)] == [0, 0, 0]
    with pytest.raises(ValueError, match="n_chunks"):
        MultiIndexHash(codes, n_chunks=7)


def test_multi_index_thresholds_satisfy_the_pigeonhole_bound() -> None:
    for widths in ([16] * 16, [22, 21, 21] * 4):
        for d in range(0, 80):
            t = thresholds(widths, d)
            assert sum(x + 1 for x in t) >= d + 1 and max(t) - min(t) <= 1


def _save(img: np.ndarray, path: Path, quality: int = 90) -> Path:
    Image.fromarray(img).save(path, quality=quality)
    return path


def test_index_add_match_remove_export_import(tmp_path: Path) -> None:
    pics = _pictures()
    known = _save(data.astronaut(), tmp_path / "known.jpg")
    video = _clip(tmp_path / "known.mp4", pics[1:], fps=10)
    db = tmp_path / "known.db"
    with HashIndex(db, create=True) as index:
        recs = [hash_file(known), hash_file(video)]
        assert index.add([Item.from_record(r, "ncii", source="case-1") for r in recs]) == (2, 0)
        assert index.add([Item.from_record(recs[0], "ncii")]) == (0, 1)  # same ref (sha256): skipped
    # queries: a mirrored, recompressed copy; a 2-second excerpt of the video; an unrelated picture
    mirrored = _save(np.ascontiguousarray(data.astronaut()[:, ::-1]), tmp_path / "mirror.jpg", quality=50)
    excerpt = _clip(tmp_path / "excerpt.mp4", pics[2:4], fps=10)
    other = _save(data.camera(), tmp_path / "other.png")
    with HashIndex(db) as index:
        matcher = Matcher(index)
        m_img = matcher.match(hash_file(mirrored, dihedral=True))
        assert m_img and m_img[0].is_match and m_img[0].label == "ncii" and m_img[0].via != "original"
        m_vid = matcher.match(hash_file(excerpt, dihedral=True))
        assert m_vid and m_vid[0].is_match and m_vid[0].kind == "video"
        assert m_vid[0].query_share == 1.0 and m_vid[0].indexed_share == pytest.approx(0.5)
        assert m_vid[0].query_ranges == [[0.0, 2.0]] and m_vid[0].indexed_ranges == [[1.0, 3.0]]
        assert matcher.match(hash_file(other, dihedral=True)) == []
        assert matcher.match(hash_file(known))[0].via == "sha256"
        out = tmp_path / "share"
        from deepdetect.hashing.exchange import export_bundle

        assert export_bundle(index, out) == 2
    assert (out / "pdq.txt").read_text().split(",")[0] == recs[0]["pdq"]
    vpdq_files = sorted((out / "vpdq").glob("*.txt"))
    assert len(vpdq_files) == 1 and len(parse_vpdq(vpdq_files[0].read_text())) == len(recs[1]["frames"])
    with HashIndex(tmp_path / "partner.db", create=True) as partner:
        assert partner.add(read_hash_list(out)) == (2, 0)
        assert partner.add(read_hash_list(vpdq_files[0], label="x")) == (1, 0)  # a lone vPDQ file
        assert Matcher(partner).match(hash_file(excerpt))[0].is_match
        assert partner.remove(label="ncii") == 2 and len(partner) == 1


def test_corrupt_or_foreign_index_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(IndexFileError, match="not found"):
        HashIndex(tmp_path / "missing.db")
    assert not (tmp_path / "missing.db").exists()
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 100)
    with pytest.raises(IndexFileError, match="not a deepdetect hash index"):
        HashIndex(junk)
    other = tmp_path / "other.db"
    sqlite3.connect(other).executescript("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
    with pytest.raises(IndexFileError, match="not a deepdetect hash index"):
        HashIndex(other, create=True)
    good = tmp_path / "good.db"
    rows = [HashRow(0, 0.0, 100, bytes([i]) * 32) for i in range(3)]
    with HashIndex(good, create=True) as index:
        index.add([Item(f"r{i}", "image", "l", [rows[i % 3]], metadata={"pad": "x" * 2000}) for i in range(200)])
    data_bytes = good.read_bytes()
    truncated = tmp_path / "truncated.db"
    truncated.write_bytes(data_bytes[: len(data_bytes) // 2])
    with pytest.raises(IndexFileError, match="truncated"):
        HashIndex(truncated)
    from deepdetect.cli.index import main

    assert main(["match", str(junk), str(tmp_path)]) == 2


_WRITER = """
import sys
from deepdetect.hashing.index import HashIndex, HashRow, Item
db, tag, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
with HashIndex(db, create=True) as index:
    for i in range(n):
        index.add([Item(f"{tag}-{i}", "image", tag, [HashRow(0, 0.0, 100, i.to_bytes(32, "big"))])])
"""


def test_two_writer_processes_lose_no_entries(tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    env = {"PYTHONPATH": SRC}
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(db), tag, "150"], env=env) for tag in ("a", "b")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    with HashIndex(db) as index:
        assert len(index) == 300 and index.n_hashes() == 300


def test_cli_hash_and_index_round_trip(tmp_path: Path) -> None:
    _save(data.astronaut(), tmp_path / "a.jpg")
    (tmp_path / "bad.jpg").write_bytes(b"")
    out = tmp_path / "h.jsonl"
    run = [sys.executable, "-m", "deepdetect.cli.hash", str(tmp_path), "--output", str(out)]
    res = subprocess.run(run, env={"PYTHONPATH": SRC}, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    recs = {Path(r["path"]).name: r for r in map(json.loads, out.read_text().splitlines())}
    assert recs["a.jpg"]["status"] == "ok" and recs["bad.jpg"]["status"] == "unreadable"
    from deepdetect.cli.index import main

    db = str(tmp_path / "k.db")
    assert main(["add", db, str(out), "--label", "ncii"]) == 0  # records, not media: no second hashing
    (tmp_path / "q").mkdir()
    small = _save(_resize(data.astronaut(), 0.3), tmp_path / "q" / "small.jpg")
    matches = tmp_path / "m.jsonl"
    assert main(["match", db, str(small), "--output", str(matches)]) == 0
    res_rec = json.loads(matches.read_text())
    assert res_rec["known_match"]["label"] == "ncii" and res_rec["known_match"]["distance"] <= 31
    assert main(["remove", db, "--label", "ncii"]) == 0
    assert main(["info", db, "--verify"]) == 0


def test_predict_index_adds_pdq_and_known_match(tmp_path: Path) -> None:
    from deepdetect.cli.index import main as index_main
    from deepdetect.cli.predict import main as predict_main
    from test_export import make_tiny_checkpoint

    model = make_tiny_checkpoint(tmp_path / "run")
    (tmp_path / "in").mkdir()
    known = _save(data.astronaut(), tmp_path / "in" / "known.jpg")
    other = _save(data.camera(), tmp_path / "in" / "other.png")
    db = tmp_path / "k.db"
    assert index_main(["add", str(db), str(known), "--label", "ncii"]) == 0
    out = tmp_path / "p.jsonl"
    args = [str(tmp_path / "in"), "--model", str(model), "--output", str(out), "--quiet", "--index", str(db)]
    assert predict_main(args) == 0
    recs = {Path(r["path"]).name: r for r in map(json.loads, out.read_text().splitlines())}
    assert recs["known.jpg"]["known_match"]["label"] == "ncii" and len(recs["known.jpg"]["pdq"]) == 64
    assert recs[other.name]["known_match"] is None and recs[other.name]["pdq"]
    csv_out = tmp_path / "p.csv"  # the CSV carries both as JSON cells
    assert predict_main([*args[:4], str(csv_out), *args[5:]]) == 0
    from deepdetect.inference.writers import complete_records

    rows = {Path(r["path"]).name: r for r in complete_records(csv_out.read_bytes(), "csv")[1]}
    assert rows["known.jpg"]["known_match"] == recs["known.jpg"]["known_match"]
    assert rows["known.jpg"]["pdq"] == recs["known.jpg"]["pdq"] and rows[other.name]["known_match"] is None
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"garbage" * 50)
    assert predict_main([*args[:-1], str(bad)]) == 2


def test_hash_writes_non_utf8_names_exactly_and_survives_an_ascii_terminal(tmp_path: Path) -> None:
    import base64
    import os

    folder = tmp_path / "in"
    folder.mkdir()
    raw = os.fsencode(str(folder)) + b"/caf\xe9.jpg"  # Latin-1 name: not UTF-8
    Image.fromarray(data.astronaut()).save(os.fsdecode(raw), format="JPEG")
    _save(data.camera(), folder / "naïve.png")  # UTF-8 but not ASCII
    env = {"PYTHONPATH": SRC, "PYTHONIOENCODING": "ascii"}
    res = subprocess.run(
        [sys.executable, "-m", "deepdetect.cli.hash", str(folder)], env=env, capture_output=True, timeout=120
    )
    assert res.returncode == 0, res.stderr.decode("ascii", "replace")
    lines = res.stdout.decode("utf-8").splitlines()  # strict: valid UTF-8 whatever the terminal's encoding
    recs = [json.loads(line) for line in lines]
    assert len(recs) == 2 and all(r["status"] == "ok" for r in recs)
    latin = next(r for r in recs if r["path_bytes_b64"] is not None)
    assert os.fsencode(latin["path"]) == raw and base64.b64decode(latin["path_bytes_b64"]) == raw
    assert next(r for r in recs if r is not latin)["path"].endswith("naïve.png")
    from deepdetect.cli.index import main

    hashes = tmp_path / "h.jsonl"
    hashes.write_bytes(res.stdout)
    assert main(["add", str(tmp_path / "k.db"), str(hashes), "--label", "ncii", "--source", "case-1"]) == 0


def test_index_match_reports_a_bad_record_as_its_own_status(tmp_path: Path) -> None:
    from deepdetect.cli.index import main

    known = _save(data.astronaut(), tmp_path / "known.jpg")
    db = str(tmp_path / "k.db")
    assert main(["add", db, str(known), "--label", "ncii", "--source", "case-1234"]) == 0
    good = next(iter(hash_paths_of(known)))
    broken = {**good, "path": "broken.jpg", "pdq": "zz"}  # a hash that is not hex
    missing = {k: v for k, v in good.items() if k != "pdq"} | {"path": "missing.jpg"}
    records = tmp_path / "q.jsonl"
    records.write_text("\n".join([json.dumps(good), json.dumps(broken), json.dumps(missing)]) + "\n")
    out = tmp_path / "m.jsonl"
    assert main(["match", db, str(records), "--output", str(out)]) == 0
    results = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["status"] for r in results] == ["ok", "error", "error"]
    assert results[0]["known_match"]["label"] == "ncii" and results[0]["known_match"]["source"] == "case-1234"
    assert all("bad hash record" in r["error"] for r in results[1:])


def hash_paths_of(path: Path) -> list[dict]:
    from deepdetect.hashing.records import hash_paths

    return list(hash_paths([path], dihedral=True))


def test_predict_index_decodes_each_video_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from deepdetect import media
    from deepdetect.cli.index import main as index_main
    from deepdetect.cli.predict import main as predict_main
    from deepdetect.hashing.api import annotate_prediction
    from test_export import make_tiny_checkpoint

    model = make_tiny_checkpoint(tmp_path / "run")
    (tmp_path / "in").mkdir()
    video = _clip(tmp_path / "in" / "known.mp4", _pictures()[:3], fps=10)  # 30 frames
    _save(data.astronaut(), tmp_path / "in" / "photo.jpg")
    db = tmp_path / "k.db"
    assert index_main(["add", str(db), str(video), "--label", "ncii"]) == 0
    decoded: list[int] = []
    frames = media._Decoder.frames

    def counting(self: media._Decoder, seek_index: int | None) -> Iterator[object]:
        for frame in frames(self, seek_index):
            decoded.append(1)
            yield frame

    monkeypatch.setattr(media._Decoder, "frames", counting)
    out = tmp_path / "p.jsonl"
    args = [str(tmp_path / "in"), "--model", str(model), "--output", str(out), "--quiet", "--index", str(db)]
    assert predict_main([*args, "--workers", "0"]) == 0
    assert len(decoded) == 30  # every frame of the video decoded once: for the model's frames and the hashes alike
    recs = {Path(r["path"]).name: r for r in map(json.loads, out.read_text().splitlines())}
    assert recs["known.mp4"]["known_match"]["label"] == "ncii"
    with HashIndex(db) as index:
        matcher = Matcher(index)
        for rec in recs.values():  # the same fields as hashing the file on its own
            again = annotate_prediction({**rec, "pdq": None, "known_match": None}, matcher)
            assert again["pdq"] == rec["pdq"] and again["known_match"] == rec["known_match"], rec["path"]
