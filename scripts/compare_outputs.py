"""Run the demo at small size, or compare two demo output folders: what a refactor must not change.

    python scripts/compare_outputs.py run OUT          # the demo (small settings below) into OUT
    python scripts/compare_outputs.py compare A B      # exit 0 when A and B match, 1 with a list of differences

Compared: extract/manifest.csv (every cell, exactly), train/model.json (the model card sidecar), train/metrics.json,
evaluate/metrics.json, export/model.onnx metadata and predictions.jsonl. The folder's own path is replaced by
`<OUT>` first. Left out on purpose: values that differ run to run by nature (`created` timestamps, `seconds`
timings, the git commit in `code_version`), and in the model card's face-crop section the difference between a
null and an absent field (both mean "not recorded" to the contract's `FaceCrop`). Numbers compare with
`math.isclose(rel_tol=1e-6, abs_tol=1e-9)`: float noise of that size is legitimate when the same model scores
crops in batches of another make-up (BLAS summation order); training on CPU is deterministic, so anything larger
is a real change. Strings, integers, booleans and keys compare exactly.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import onnx
import pandas as pd

# The demo at about the size of tests/test_demo.py (two epochs, so selection and early-stopping state is exercised).
DEMO_OVERRIDES = (
    "sample.n_real=16",
    "sample.n_fake=16",
    "sample.n_videos=2",
    "extract=['frames_per_video=4','size=64','min_face_size=30','val_fraction=0.25','test_fraction=0.25']",
    "train=['model=test','trainer.max_epochs=2','data.batch_size=8','data.num_workers=0',"
    "'data.frames_per_video_epoch=null','logger=csv']",
    "evaluate=['bootstrap.n=20','robustness=[jpeg50]','report.gradcam=1']",
    "predict.frames=4",
)
IGNORED_KEYS = frozenset({"created", "seconds", "git_sha"})
REL_TOL, ABS_TOL = 1e-6, 1e-9


def run_demo(out: Path) -> int:
    """The demo (in a child process, so PYTHONPATH picks the code under test) into `out`."""
    cmd = [sys.executable, "-m", "deepdetect.cli.demo", f"output_dir={out}", *DEMO_OVERRIDES]
    return subprocess.call(cmd, env=os.environ.copy())


def _normalise(obj: Any, root: str) -> Any:
    """A copy with `root` replaced by <OUT> in strings and the ignored keys removed."""
    if isinstance(obj, dict):
        return {k: _normalise(v, root) for k, v in obj.items() if k not in IGNORED_KEYS}
    if isinstance(obj, list | tuple):
        return [_normalise(v, root) for v in obj]
    if isinstance(obj, str):
        return obj.replace(root, "<OUT>")
    return obj


def diff(a: Any, b: Any, where: str = "") -> list[str]:
    """Differences between two JSON-like values (numbers within the tolerance count as equal)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{where}.{k}: only in {'A' if k in a else 'B'}" for k in sorted(set(a) ^ set(b))]
        for k in a:
            if k in b:
                out += diff(a[k], b[k], f"{where}.{k}")
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{where}: {len(a)} items vs {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in diff(x, y, f"{where}[{i}]")]
    if isinstance(a, bool) or isinstance(b, bool):
        return [] if type(a) is type(b) and a == b else [f"{where}: {a!r} vs {b!r}"]
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers):
        if isinstance(a, float) or isinstance(b, float):
            same = (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL)
        else:
            same = a == b
        return [] if same else [f"{where}: {a!r} vs {b!r}"]
    return [] if a == b else [f"{where}: {a!r} vs {b!r}"]


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _sidecar(path: Path) -> dict[str, Any]:
    """The model card sidecar, its face-crop section as the contract reads it (an unrecorded field, null or
    absent, means the same to `FaceCrop`)."""
    from deepdetect.contract import FaceCrop

    meta = _json(path)
    meta["face_crop"] = FaceCrop.from_dict(meta.get("face_crop") or {}).to_dict()
    return meta


def _onnx_meta(path: Path) -> dict[str, Any]:
    """The ONNX file's metadata entries, JSON values parsed."""
    props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    out: dict[str, Any] = {}
    for key, value in props.items():
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def _manifest(path: Path) -> list[dict[str, Any]]:
    """Every cell as text (exact comparison)."""
    return pd.read_csv(path, dtype=str, keep_default_na=False).to_dict(orient="records")  # type: ignore[return-value]


def _jsonl(path: Path) -> list[Any]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


READERS = {
    "extract/manifest.csv": _manifest,
    "train/model.json": _sidecar,
    "train/metrics.json": _json,
    "evaluate/metrics.json": _json,
    "export/model.onnx": _onnx_meta,
    "predictions.jsonl": _jsonl,
}


def compare(a_dir: Path, b_dir: Path) -> list[str]:
    """Every difference between the outputs of two demo runs."""
    problems: list[str] = []
    for rel, read in READERS.items():
        a_path, b_path = a_dir / rel, b_dir / rel
        missing = [str(p) for p in (a_path, b_path) if not p.is_file()]
        if missing:
            problems.append(f"{rel}: missing {', '.join(missing)}")
            continue
        a = _normalise(read(a_path), str(a_dir.resolve()))
        b = _normalise(read(b_path), str(b_dir.resolve()))
        problems += [f"{rel}{d}" for d in diff(a, b)]
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("run").add_argument("out", type=Path)
    cmp = sub.add_parser("compare")
    cmp.add_argument("a", type=Path)
    cmp.add_argument("b", type=Path)
    args = parser.parse_args(argv)
    if args.cmd == "run":
        return run_demo(args.out)
    problems = compare(args.a, args.b)
    for line in problems:
        print(line)
    print(f"{len(problems)} differences in {', '.join(READERS)}")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
