"""deepdetect-predict --engine ray: the same stages on Ray Data (local mode) give the local engine's records."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from deepdetect.export.pipeline import export
from deepdetect.inference.predict import run_predict
from deepdetect.inference.settings import PredictSettings, SettingsError
from media_corpus import make_bad_corpus, make_video
from test_export import export_cfg, make_tiny_checkpoint

pytest.importorskip("ray.data")

VARIES = {"run_id", "scanned_at", "seconds"}  # differ between any two runs


def _records(path: Path) -> dict[str, dict]:
    return {r["path"]: r for r in map(json.loads, path.read_text(encoding="utf-8").splitlines())}


@pytest.mark.slow
def test_ray_engine_gives_the_local_records(tmp_path: Path) -> None:
    from skimage.data import astronaut

    model = tmp_path / "ex" / "model.onnx"
    export(export_cfg(make_tiny_checkpoint(tmp_path / "run"), tmp_path / "ex"))
    media = tmp_path / "media"
    media.mkdir()
    img = astronaut()
    Image.fromarray(img).save(media / "astronaut.jpg")
    make_video(media / "clip.mp4", [img[:256, 64:320]] * 6, fps=5)
    corpus = make_bad_corpus(tmp_path / "bad")  # unreadable, unsupported, no frames, ... and faceless files
    listing = tmp_path / "list.txt"
    paths = [media / "astronaut.jpg", media / "clip.mp4", *(p for p, _ in corpus.values()), tmp_path / "gone.jpg"]
    listing.write_text("\n".join(map(str, paths)) + "\n", encoding="utf-8")

    local, ray = tmp_path / "local.jsonl", tmp_path / "out" / "ray.jsonl"
    ray.parent.mkdir()
    base = {"frames": 4, "progress": False, "workers": 1}
    run_predict([listing], model, local, PredictSettings(**base))
    summary = run_predict([listing], model, ray, PredictSettings(**base, engine="ray", ray_address="local"))
    want, got = _records(local), _records(ray)
    assert list(got) == list(want) and len(got) == len(paths)  # every input, in input order
    assert sum(summary.statuses.values()) == len(paths)
    for path, w in want.items():
        g = got[path]
        assert g["status"] == w["status"], path
        for key in set(w) - VARIES - {"score", "score_interval", "faces"}:
            assert g[key] == w[key], (path, key)
        if w["score"] is not None:
            assert abs(g["score"] - w["score"]) <= 1e-6
            assert [f["score"] for f in g["faces"]] == pytest.approx([f["score"] for f in w["faces"]], abs=1e-6)
    assert {r["status"] for r in want.values()} >= {"ok", "no_face", "not_found", "unreadable"}
    assert [p.name for p in ray.parent.iterdir() if p.name.startswith("shards-")] == []  # merged, then removed


def test_ray_engine_settings_are_checked() -> None:
    with pytest.raises(SettingsError, match="unknown engine"):
        PredictSettings(engine="spark")
    with pytest.raises(SettingsError, match="--explain"):
        PredictSettings(engine="ray", explain_dir="x")


def test_shards_cut_short_keep_their_whole_records(tmp_path: Path) -> None:
    from deepdetect.inference.engine_ray import read_shards

    row = {"order": 0, "record": json.dumps({"path": "a", "score": 0.25})}
    (tmp_path / "1.json").write_text(json.dumps(row) + "\n" + json.dumps({**row, "order": 2}) + "\n")
    (tmp_path / "2.json").write_text(json.dumps({**row, "order": 1})[:-9])  # its writer died mid-line
    assert read_shards(tmp_path) == {0: {"path": "a", "score": 0.25}, 2: {"path": "a", "score": 0.25}}


class _WorkerKiller(threading.Thread):
    """Kills (SIGKILL) this test's own Ray workers, never another process: a descendant of this process whose title
    (Ray sets it to the task or actor it runs) holds a fragment, once it is past its `__init__`, `limit` times per
    fragment (None: every one, until stopped). Each kill notes how many records the run's shards held then."""

    def __init__(self, limits: dict[str, int | None], shards: Path) -> None:
        super().__init__(daemon=True)
        self.limits, self.shards = limits, shards
        self.killed: dict[str, list[int]] = {fragment: [] for fragment in limits}
        self.stop = threading.Event()

    def written(self) -> int:
        """Records in the run's JSONL shards so far."""
        return sum(len(f.read_bytes().splitlines()) for f in self.shards.glob("shards-*/*.json*") if f.is_file())

    def run(self) -> None:
        import psutil

        me = psutil.Process()
        while not self.stop.is_set():
            for proc in me.children(recursive=True):
                try:
                    title = " ".join(proc.cmdline())
                except psutil.Error:
                    continue
                for fragment, limit in self.limits.items():
                    wanted = limit is None or len(self.killed[fragment]) < limit
                    if wanted and fragment in title and ".__init__" not in title:
                        written = self.written()
                        try:
                            proc.kill()
                        except psutil.Error:
                            break
                        self.killed[fragment].append(written)
                        break
            time.sleep(0.02)


def _faces_corpus(root: Path, n_images: int) -> Path:
    """A list file: `n_images` face photos (the astronaut, shifted), a short video of her and a missing file."""
    from skimage.data import astronaut

    root.mkdir(parents=True)
    img = astronaut()
    paths = []
    for i in range(n_images):
        paths.append(root / f"face_{i:02d}.jpg")
        Image.fromarray(np.roll(img, 8 * i, axis=1)).save(paths[-1])
    paths.append(make_video(root / "clip.mp4", [img[:256, 64:320]] * 6, fps=5))
    paths.append(root / "gone.jpg")
    listing = root / "list.txt"
    listing.write_text("\n".join(map(str, paths)) + "\n", encoding="utf-8")
    return listing


PREPARE = "Map(_prepare)"  # the title of a Ray worker while it decodes and finds faces (a task)
SCORE = "MapBatches(_ScoreAndFinish)"  # the model actor's title (".submit" appended while it scores a batch)


@pytest.mark.slow
def test_ray_workers_killed_mid_run_lose_no_record(tmp_path: Path) -> None:
    """A decode task's worker and the model actor, each killed once while the run goes on: Ray retries the task
    and restarts the actor, and the records are the local engine's."""
    pytest.importorskip("psutil")
    model = tmp_path / "ex" / "model.onnx"
    export(export_cfg(make_tiny_checkpoint(tmp_path / "run"), tmp_path / "ex"))
    listing = _faces_corpus(tmp_path / "media", n_images=8)
    base = {"frames": 4, "progress": False, "workers": 1}
    local, ray = tmp_path / "local.jsonl", tmp_path / "ray.jsonl"
    run_predict([listing], model, local, PredictSettings(**base))

    killer = _WorkerKiller({PREPARE: 1, SCORE: 1}, shards=tmp_path)
    killer.start()
    try:
        summary = run_predict([listing], model, ray, PredictSettings(**base, engine="ray", ray_address="local"))
    finally:
        killer.stop.set()
        killer.join()
    assert [len(v) for v in killer.killed.values()] == [1, 1], killer.killed
    assert max(killer.killed[PREPARE] + killer.killed[SCORE]) < 10  # both died with records still to come
    want, got = _records(local), _records(ray)
    assert list(got) == list(want) and sum(summary.statuses.values()) == len(want) == 10
    for path, w in want.items():
        assert got[path]["status"] == w["status"], (path, got[path]["error"])
        if w["score"] is not None:
            assert abs(got[path]["score"] - w["score"]) <= 1e-6, path
    assert summary.statuses["ok"] == 9 and summary.statuses["not_found"] == 1


@pytest.mark.slow
def test_files_whose_ray_worker_keeps_dying_get_an_error_status(tmp_path: Path) -> None:
    """Every decode task's worker killed as soon as it runs: after Ray's retries each file still gets its record,
    status `error` saying why, and the run ends normally."""
    pytest.importorskip("psutil")
    from deepdetect.inference.engine_ray import RETRIES

    model = tmp_path / "ex" / "model.onnx"
    export(export_cfg(make_tiny_checkpoint(tmp_path / "run"), tmp_path / "ex"))
    listing = _faces_corpus(tmp_path / "media", n_images=2)
    out = tmp_path / "ray.jsonl"
    killer = _WorkerKiller({PREPARE: None}, shards=tmp_path)
    killer.start()
    try:
        settings = PredictSettings(frames=4, progress=False, workers=1, engine="ray", ray_address="local")
        summary = run_predict([listing], model, out, settings)
    finally:
        killer.stop.set()
        killer.join()
    records = _records(out)
    assert len(records) == 4 and sum(summary.statuses.values()) == 4  # every input accounted for
    images = [r for path, r in records.items() if not path.endswith("gone.jpg")]
    assert len(images) == 3
    for rec in images:
        assert rec["status"] == "error" and rec["score"] is None, rec
        assert "Ray" in rec["error"], rec["error"]
    assert len(killer.killed[PREPARE]) >= 3, "each file's decode task died"
    assert any(f"failed {RETRIES + 1} times" in r["error"] or "stopped early" in r["error"] for r in images)
