"""The first GPU figures in one short run (a few minutes): training images/s, predict s/video and ONNX Runtime CUDA
s/batch, written to bench/results/gpu_train.json, gpu_predict.json and gpu_ort.json (`bench/bench_gpu.py::figures`).

    python scripts/gpu_figures.py [--out bench/results] [--dry-run-on-cpu]

Where there is no CUDA device it says so and exits 0 without writing anything. `--dry-run-on-cpu` runs the same
code with tiny settings on the CPU (checks the path; its figures mean nothing).
"""

import argparse
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=BENCH / "results", help="folder for the gpu_*.json files")
    parser.add_argument("--dry-run-on-cpu", action="store_true", help="tiny settings on the CPU (code path only)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(BENCH))  # the benchmarks load each other through bench/siblings.py
    from siblings import load

    bench_gpu = load("bench_gpu")
    reason = None if args.dry_run_on_cpu else bench_gpu.no_gpu_reason()
    if reason is not None:
        print(reason)
        return 0
    bench_gpu.figures(args.out, device="cpu" if args.dry_run_on_cpu else "cuda", tiny=args.dry_run_on_cpu)
    return 0


if __name__ == "__main__":
    sys.exit(main())
