"""Assemble docs/RESULTS.md: the hand-written head, then per run its command, wall time and summarize.py's tables."""
import re, subprocess, sys
from pathlib import Path
R = Path("outputs/ref")
G, P, V = "$G", "$P", "$V"
RUNS = [
 ("baseline", "1. Issue 8 baseline reproduced (resnet18, random init, 128 px, 2 epochs, augment=light)",
  f".venv/bin/deepdetect-train experiment=gan_faces_baseline data.manifest={G} data.num_workers=2 trainer=cpu output_dir=outputs/ref/baseline"),
 ("reference", "2a. Issue 4 reference (resnet18, random init, 128 px, 6 epochs, augment=light; `experiment=gan_faces_reference`)",
  f".venv/bin/deepdetect-train experiment=gan_faces_reference data.manifest={G} trainer=cpu output_dir=outputs/ref/reference"),
 ("sbi_only", "2b. Issue 4 SBI-only (real gan-faces crops only, self-blended fakes p=0.5; resnet18, 128 px, 6 epochs)",
  f".venv/bin/deepdetect-train experiment=sbi_only model=resnet18 model.input_size=128 data.manifest={G} data.num_workers=2 trainer=cpu trainer.max_epochs=6 output_dir=outputs/ref/sbi_only"),
 ("sbi_only_30ep", "2c. Issue 4 SBI-only trained longer (30 epochs, no early stop; otherwise as 2b)",
  f".venv/bin/deepdetect-train experiment=sbi_only model=resnet18 model.input_size=128 data.manifest={G} data.num_workers=2 trainer=cpu trainer.max_epochs=30 trainer.patience=null output_dir=outputs/ref/sbi_only_30ep"),
 ("loso_base_photos", "3.0 Control: baseline recipe under LOSO, photos held out (`experiment=loso_baseline`, 6 epochs)",
  f".venv/bin/deepdetect-train experiment=loso_baseline \"data.manifest=[{G},{P},{V}]\" data.holdout_source=photos trainer=cpu output_dir=outputs/ref/loso_base_photos"),
 ("loso_sb_photos", "3a. Recipe (a): source-balanced + degradation chain + SBI mix, photos held out (`experiment=loso_source_balanced`)",
  f".venv/bin/deepdetect-train experiment=loso_source_balanced \"data.manifest=[{G},{P},{V}]\" data.holdout_source=photos trainer=cpu output_dir=outputs/ref/loso_sb_photos"),
 ("loso_sbpatch_photos", "3b. Recipe (b): recipe (a) with the patch head, photos held out (`experiment=loso_source_balanced_patch`)",
  f".venv/bin/deepdetect-train experiment=loso_source_balanced_patch \"data.manifest=[{G},{P},{V}]\" data.holdout_source=photos trainer=cpu output_dir=outputs/ref/loso_sbpatch_photos"),
 ("loso_sbres_photos", "3c. Recipe (c): recipe (a) + every crop downscaled to 50% (train and test), photos held out (`experiment=loso_source_balanced_resnorm`)",
  f".venv/bin/deepdetect-train experiment=loso_source_balanced_resnorm \"data.manifest=[{G},{P},{V}]\" data.holdout_source=photos trainer=cpu output_dir=outputs/ref/loso_sbres_photos\n"
  "# evaluation as above but with 'robustness=[downscale50]' in both evaluate calls"),
 ("loso_base_videos", "3.1 Control with videos held out (`experiment=loso_baseline`)",
  f".venv/bin/deepdetect-train experiment=loso_baseline \"data.manifest=[{G},{P},{V}]\" data.holdout_source=videos trainer=cpu output_dir=outputs/ref/loso_base_videos"),
 ("loso_sb_videos", "3d. Recipe (a), videos held out (photos are in training)",
  f".venv/bin/deepdetect-train experiment=loso_source_balanced \"data.manifest=[{G},{P},{V}]\" data.holdout_source=videos trainer=cpu output_dir=outputs/ref/loso_sb_videos"),
 ("loso_sbpatch_videos", "3e. Recipe (b) (patch head), videos held out",
  f".venv/bin/deepdetect-train experiment=loso_source_balanced_patch \"data.manifest=[{G},{P},{V}]\" data.holdout_source=videos trainer=cpu output_dir=outputs/ref/loso_sbpatch_videos"),
]
head = Path("docs/results-tools/results_head.md").read_text()
tail = Path("docs/results-tools/results_tail.md").read_text() if Path("docs/results-tools/results_tail.md").exists() else ""
OV = ["baseline:photos, videos, crops", "reference:photos, videos, crops", "sbi_only:photos, videos, crops (no fakes)",
      "sbi_only_30ep:photos, videos, crops (no fakes)", "loso_base_photos:photos, crops", "loso_sb_photos:photos, crops",
      "loso_sbpatch_photos:photos, crops", "loso_sbres_photos:photos, crops (see 3c)", "loso_base_videos:videos, crops", "loso_sb_videos:videos, crops", "loso_sbpatch_videos:videos, crops"]
ov = subprocess.run([sys.executable, "docs/results-tools/overview.py", *OV], capture_output=True, text=True, check=True).stdout
mid = Path("docs/results-tools/results_mid.md").read_text() if Path("docs/results-tools/results_mid.md").exists() else ""
out = [head, "\n## Overview\n\n", mid, "\n", ov]
for run, title, cmd in RUNS:
    if not (R / run / "eval_cross/metrics.json").exists():
        out.append(f"\n## {title}\n\nNot run (time limit).\n"); continue
    log = (R / "logs" / f"{run}.log").read_text(errors="replace")
    m = re.findall(r"^real\s+(\S+)", log, re.M)
    wall = m[-1] if m else "?"
    tab = subprocess.run([sys.executable, "docs/results-tools/summarize.py", run], capture_output=True, text=True, check=True).stdout
    tab = tab.split("\n", 3)[3] if tab.startswith("\n###") else tab
    out.append(f"\n## {title}\n\n```bash\n{cmd}\n```\nWall time of the train command: {wall} (`outputs/ref/logs/{run}.log`; for LOSO runs it includes the built-in held-out evaluation), then the two evaluate calls above (13–30 s each).\n{tab}")
out.append(tail)
Path("docs/RESULTS.md").write_text("".join(out))
print("wrote docs/RESULTS.md")
