"""Run every `bench/bench_*.py` module and write its figures to `<out>/<topic>.json`.

Each module exposes `run(out_dir: Path, quick: bool) -> dict`. Ratios are measured side by side inside one
module run, so machine noise affects both sides alike. A module that fails is recorded with its error and the
others still run.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import traceback
from pathlib import Path

import torch
from siblings import load

HERE = Path(__file__).resolve().parent


def machine() -> dict[str, object]:
    """What the figures were measured on."""
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_count": torch.get_num_threads(),
        "platform": platform.platform(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=HERE / "results", help="folder for the JSON files")
    parser.add_argument("--quick", action="store_true", help="small inputs, each module < 1 minute")
    parser.add_argument("--only", nargs="*", default=None, help="topics to run (e.g. decode mtcnn)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    failed = 0
    for path in sorted(HERE.glob("bench_*.py")):
        topic = path.stem.removeprefix("bench_")
        if args.only and topic not in args.only:
            continue
        start = time.perf_counter()
        print(f"[bench] {topic} ...", flush=True)
        try:
            figures = load(path.stem).run(args.out, args.quick)
            status = "ok"
        except Exception as exc:  # one failing benchmark must not hide the others
            figures = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
            status = "failed"
            failed += 1
        record = {
            "topic": topic,
            "status": status,
            "quick": args.quick,
            "seconds": round(time.perf_counter() - start, 2),
            "machine": machine(),
            "figures": figures,
        }
        (args.out / f"{topic}.json").write_text(json.dumps(record, indent=2, default=str))
        print(f"[bench] {topic}: {status} in {record['seconds']} s -> {args.out / (topic + '.json')}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
