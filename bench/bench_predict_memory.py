"""Predict's memory over a long queue: RSS every 500 files over 10,000 distinct files (hard links of a 512 px photo,
every 50th file a 512x512 clip) read from a path list through `predict_files` with today's defaults, in a fresh
process (`bench_predict_throughput.memory`). Model: tf_efficientnet_lite0 at 128 px, INT8 with the shipped settings
(random init). Quick: 400 files."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from siblings import load


def run(out_dir: Path, quick: bool) -> dict[str, Any]:
    """RSS curve and peak over the queue (see the module docstring)."""
    from deepdetect.utils.devdata import dev_data_dir

    del out_dir
    data = dev_data_dir()
    if data is None:
        return {"skipped": "no dev data (../shared/data or $DEEPDETECT_DEV_DATA)"}
    bench = load("bench_predict_throughput")
    files = {"image": data / "photos" / "img50.jpg", "video_720p": data / "videos" / "lp_d0.mp4"}
    with tempfile.TemporaryDirectory() as tmp:
        model = bench._make_model(Path(tmp), "tf_efficientnet_lite0", 128, int8=True)
        n = 400 if quick else 10_000
        figures = bench.memory(model, files, n, 100 if quick else 500)
    return {"load_avg_start": os.getloadavg(), "model": "tf_efficientnet_lite0 128 px INT8 (random init)", **figures}
