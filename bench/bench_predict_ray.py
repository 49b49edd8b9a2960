"""Predict on Ray Data (`--engine ray`) vs the local engine: files/s for 1 and 2 model actors on this machine.

The same file list (dev photos and a 512² clip, as a path list) goes through `run_predict` with the local engine
(2 worker threads) and with Ray in local mode (a Ray instance started by the run, its start-up included), 1 and 2
model actors, one after the other in one process; the records of every run are checked to be the local ones
(status per file, scores within 1e-6). Model: efficientnet_b0 at 224 px, ONNX fp32, random init (speed only).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from siblings import load


def _records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def run(out_dir: Path, quick: bool) -> dict[str, Any]:
    """files/s of the local engine and of Ray with 1 and 2 model actors, on the same files."""
    from deepdetect.inference.predict import run_predict
    from deepdetect.inference.settings import PredictSettings
    from deepdetect.utils.devdata import dev_data_dir

    del out_dir
    data = dev_data_dir()
    if data is None:
        return {"skipped": "no dev data (../shared/data or $DEEPDETECT_DEV_DATA)"}
    try:
        import ray.data  # noqa: F401
    except ImportError:
        return {"skipped": "ray is not installed (pip install 'deepdetect[ray]')"}
    photos = sorted((data / "photos").glob("*.jpg"))[: 8 if quick else 40]
    videos = [data / "videos" / "lp_d0.mp4"] * (1 if quick else 4)
    files = photos + videos
    out: dict[str, Any] = {"cpu_count": os.cpu_count(), "files": len(files), "load_avg_start": os.getloadavg()}
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        model = load("bench_predict_throughput")._make_model(scratch)
        listing = scratch / "files.txt"
        listing.write_text("\n".join(map(str, files)) + "\n", encoding="utf-8")
        reference: list[dict[str, Any]] | None = None
        for name, extra in (
            ("local_2_threads", {"workers": 2}),
            ("ray_1_actor", {"workers": 1, "engine": "ray"}),
            ("ray_2_actors", {"workers": 2, "engine": "ray"}),
        ):
            target = scratch / f"{name}.jsonl"
            settings = PredictSettings(frames=32, progress=False, **extra)  # type: ignore[arg-type]
            start = time.perf_counter()
            run_predict([listing], model, target, settings)
            seconds = time.perf_counter() - start
            recs = _records(target)
            if reference is None:
                reference = recs
            same = len(recs) == len(reference) and all(
                a["status"] == b["status"]
                and (a["score"] is None) == (b["score"] is None)
                and (a["score"] is None or abs(a["score"] - b["score"]) <= 1e-6)
                for a, b in zip(recs, reference, strict=True)
            )
            out[name] = {"seconds": round(seconds, 2), "files_per_s": round(len(files) / seconds, 2)}
            out[name]["same_records_as_local"] = same
            print(name, out[name], flush=True)
    out["load_avg_end"] = os.getloadavg()
    return out
