"""glibc malloc thresholds (`utils/malloc.py`, set by every Hydra command): a training step with and without them.

Two fresh processes side by side, alternating (default, tuned, default, tuned): each trains
tf_efficientnet_lite0 (random init) at 224 px on a batch of 32 random images with AdamW, two warm-up steps, then
times `steps` steps: wall seconds, user and system CPU seconds, and minor page faults per step.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

STEP = """
import json, resource, sys, time
import torch, timm
if sys.argv[1] == "tuned":
    from deepdetect.utils.malloc import keep_freed_memory
    assert keep_freed_memory()
torch.manual_seed(0)
model = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=1).train()
opt = torch.optim.AdamW(model.parameters(), 1e-4)
x = torch.randn(32, 3, 224, 224)
def step():
    model(x).mean().backward(); opt.step(); opt.zero_grad()
step(); step()
steps = int(sys.argv[2])
r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
for _ in range(steps):
    step()
wall, r1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"wall_s_per_step": wall / steps, "user_s_per_step": (r1.ru_utime - r0.ru_utime) / steps,
                  "sys_s_per_step": (r1.ru_stime - r0.ru_stime) / steps,
                  "minor_faults_per_step": (r1.ru_minflt - r0.ru_minflt) / steps}))
"""


def _run(mode: str, steps: int) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_TUNABLES"))}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1] / "src")
    done = subprocess.run([sys.executable, "-c", STEP, mode, str(steps)], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip()[-400:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(out_dir: Path, quick: bool) -> dict[str, Any]:
    """Per-step figures of both sides (medians over the repeats) and default / tuned wall ratio."""
    del out_dir
    steps, repeats = (3, 1) if quick else (5, 2)
    runs: dict[str, list[dict[str, float]]] = {"default": [], "tuned": []}
    for _ in range(repeats):
        for mode in runs:
            runs[mode].append(_run(mode, steps))
            print(mode, runs[mode][-1], flush=True)

    def median(mode: str, key: str) -> float:
        return round(statistics.median(r[key] for r in runs[mode]), 3)

    out: dict[str, Any] = {"steps": steps, "repeats": repeats, "load_avg": os.getloadavg(), "runs": runs}
    for mode in runs:
        out[mode] = {k: median(mode, k) for k in runs[mode][0]}
    out["wall_ratio_default_over_tuned"] = round(out["default"]["wall_s_per_step"] / out["tuned"]["wall_s_per_step"], 2)
    return out
