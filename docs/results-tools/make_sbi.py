"""Make self-blended (SBI) fakes of every real crop of a manifest: a new manifest, label=fake, source=sbi-<source>.
Usage: python make_sbi.py IN/manifest.csv OUT_DIR [seed]"""
import sys
from pathlib import Path
import numpy as np, pandas as pd
from PIL import Image
from deepdetect.data.dataset import read_crop
from deepdetect.data.manifest import parse_landmarks
from deepdetect.data.sbi import self_blend

src, out = Path(sys.argv[1]), Path(sys.argv[2])
seed = int(sys.argv[3]) if len(sys.argv) > 3 else 0
df = pd.read_csv(src, dtype=str, keep_default_na=False)
rows = []
(out / "crops").mkdir(parents=True, exist_ok=True)
for i, r in df.iterrows():
    lm = parse_landmarks(r["landmarks"])
    if r["label"] != "real" or len(lm) != 10:
        continue
    img = read_crop(str(src.parent / r["crop_path"]))
    blended, _ = self_blend(img, lm, np.random.default_rng([seed, i]))
    name = f"crops/sbi_{i:05d}.png"
    Image.fromarray(blended).save(out / name)
    r = r.copy()
    r["crop_path"], r["label"], r["source"], r["method"] = name, "fake", "sbi-" + r["source"], "sbi"
    r["video_id"] = "sbi:" + r["video_id"]; r["group"] = "sbi:" + r["group"]; r["split"] = "test"
    rows.append(r)
pd.DataFrame(rows).to_csv(out / "manifest.csv", index=False)
print(len(rows), "SBI fakes ->", out / "manifest.csv")
