"""`deepdetect-predict` as an analyst runs it: wall seconds of the whole command (start-up included), fresh process.

Cases: start-up (a 64×64 face-free PNG), a 512² clip alone (`videos/lp_d0.mp4`), the 1080p clip alone, a batch of
six ≤ 720p clips (`faceswap-dfl/real`, 400-564 px wide) and a batch of three copies of the 1080p clip (links),
all at 32 frames per video with predict's defaults; a batch's figure is also given per video, start-up included
and without it (the batch's wall time less the start-up median). Each case is also timed as the child's CPU
seconds (user + system), which a loaded machine inflates less than wall time.

`BENCH_CLI_MODEL`: the model to run (e.g. the face-swap reference's `model.onnx`); default an ONNX export of
tf_efficientnet_lite0 at 128 px, INT8 with the shipped settings (random init: speed only). `BENCH_CLI_BEFORE_SRC`:
a `src` folder of another checkout (e.g. main before a change); each case then alternates that source and this one
(A B A B ...) in the same run, and the JSON gives both and their ratio; the records of the two are compared.
`BENCH_CLI_BEFORE_MODEL`: the model of the `before` side (e.g. the fp32 export beside an INT8 `BENCH_CLI_MODEL`),
with this source unless `BENCH_CLI_BEFORE_SRC` names another; the records then also give the largest score change.
`BENCH_CLI_REPEATS`: runs of each case per side (default 3; 1 with --quick); `BENCH_CLI_CASES`: the cases to run
(comma-separated; default all).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from siblings import load

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
AIMS_S = {"startup": 1.5, "per_video_720p_in_batch": 1.0, "per_video_1080p_in_batch": 2.0}


def _predict(src: Path, inputs: list[str], model: Path, out: Path) -> tuple[float, float, list[dict[str, Any]]]:
    """(wall s, CPU s, records) of one `python -m deepdetect.cli.predict` process run with `src` first on the path."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    argv = [sys.executable, "-m", "deepdetect.cli.predict", *inputs, "--model", str(model), "--output", str(out)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([*argv, "--overwrite", "--quiet"], env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"predict failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


def _same(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> bool:
    """Same statuses, face counts and scores (within 1e-6)."""
    return len(a) == len(b) and all(
        x["status"] == y["status"]
        and x.get("n_faces") == y.get("n_faces")
        and (x["score"] is None) == (y["score"] is None)
        and (x["score"] is None or abs(x["score"] - y["score"]) <= 1e-6)
        for x, y in zip(a, b, strict=True)
    )


def _max_change(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> float | None:
    """The largest |score difference| between two runs' records of the same files (None: nothing scored)."""
    diffs = [abs(x["score"] - y["score"]) for x, y in zip(a, b, strict=True) if None not in (x["score"], y["score"])]
    return round(max(diffs), 6) if diffs else None


def run(out_dir: Path, quick: bool) -> dict[str, Any]:
    """Wall and CPU seconds of each case (see the module docstring), this source and optionally a `before` one."""
    from PIL import Image

    from deepdetect.utils.devdata import dev_data_dir

    del out_dir
    data = dev_data_dir()
    if data is None:
        return {"skipped": "no dev data (../shared/data or $DEEPDETECT_DEV_DATA)"}
    sides = {"after": SRC}
    if os.environ.get("BENCH_CLI_BEFORE_SRC") or os.environ.get("BENCH_CLI_BEFORE_MODEL"):
        sides = {"before": Path(os.environ.get("BENCH_CLI_BEFORE_SRC") or SRC), "after": SRC}
    repeats = int(os.environ.get("BENCH_CLI_REPEATS", 1 if quick else 3))
    out: dict[str, Any] = {"cpu_count": os.cpu_count(), "load_avg_start": os.getloadavg(), "repeats": repeats,
                           "sides": {k: str(v) for k, v in sides.items()}, "aims_s": AIMS_S}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        if os.environ.get("BENCH_CLI_MODEL"):
            model = Path(os.environ["BENCH_CLI_MODEL"])
            out["model"] = str(model)
        else:
            model = load("bench_predict_throughput")._make_model(scratch, "tf_efficientnet_lite0", 128, int8=True)
            out["model"] = "tf_efficientnet_lite0 128 px INT8 (random init)"
        blank = scratch / "blank.png"
        Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(blank)
        clips = sorted((data / "faceswap-dfl" / "real").glob("*.mp4"))[:6]
        hd = data / "videos" / "fnp_video_1080p.mp4"
        batch_720, batch_1080 = scratch / "batch_720.txt", scratch / "batch_1080.txt"
        batch_720.write_text("\n".join(map(str, clips)) + "\n", encoding="utf-8")
        copies = [scratch / f"hd_{i}.mp4" for i in range(3)]  # three files: predict records a repeated path once
        for copy in copies:
            try:
                os.link(hd, copy)
            except OSError:  # another file system
                shutil.copyfile(hd, copy)
        batch_1080.write_text("\n".join(map(str, copies)) + "\n", encoding="utf-8")
        cases = {
            "startup": ([str(blank)], 1),
            "video_512_alone": ([str(data / "videos" / "lp_d0.mp4")], 1),
            "video_1080p_alone": ([str(hd)], 1),
            "batch_6_720p": ([str(batch_720)], len(clips)),
            "batch_3_1080p": ([str(batch_1080)], 3),
        }
        if quick:
            cases.pop("batch_3_1080p")
        if os.environ.get("BENCH_CLI_CASES"):  # e.g. startup,batch_3_1080p
            cases = {k: v for k, v in cases.items() if k in os.environ["BENCH_CLI_CASES"].split(",")}
        models = {side: model for side in sides}
        if os.environ.get("BENCH_CLI_BEFORE_MODEL"):
            models["before"] = Path(os.environ["BENCH_CLI_BEFORE_MODEL"])
            out["model_before"] = str(models["before"])
        for side, src in sides.items():  # warm-up: the page cache, the MTCNN nets in the user's cache
            _predict(src, [str(blank)], models[side], scratch / f"{side}.jsonl")
        results: dict[str, Any] = {}
        for case, (inputs, n_files) in cases.items():
            times: dict[str, dict[str, list[float]]] = {s: {"wall_s": [], "cpu_s": []} for s in sides}
            records: dict[str, list[dict[str, Any]]] = {}
            for _ in range(repeats):
                for side, src in sides.items():
                    wall, cpu, records[side] = _predict(src, inputs, models[side], scratch / f"{side}.jsonl")
                    times[side]["wall_s"].append(round(wall, 3))
                    times[side]["cpu_s"].append(round(cpu, 3))
            entry: dict[str, Any] = {"files": n_files}
            for side in sides:
                wall = float(np.median(times[side]["wall_s"]))
                entry[side] = {**times[side], "wall_median_s": round(wall, 3),
                               "cpu_median_s": round(float(np.median(times[side]["cpu_s"])), 3),
                               "statuses": [r["status"] for r in records[side]],
                               "faces": [r.get("n_faces") for r in records[side]]}  # fmt: skip
                if n_files > 1:
                    entry[side]["wall_per_file_s"] = round(wall / n_files, 3)
                    if "startup" in results:
                        startup = results["startup"][side]["wall_median_s"]
                        entry[side]["wall_per_file_without_startup_s"] = round((wall - startup) / n_files, 3)
            if "before" in sides:
                entry["before_over_after_wall"] = round(
                    entry["before"]["wall_median_s"] / max(entry["after"]["wall_median_s"], 1e-9), 3
                )
                entry["same_records"] = _same(records["before"], records["after"])
                entry["max_score_change"] = _max_change(records["before"], records["after"])
            results[case] = entry
            print(case, {s: entry[s]["wall_median_s"] for s in sides}, flush=True)
        out["cases"] = results
    out["load_avg_end"] = os.getloadavg()
    return out
