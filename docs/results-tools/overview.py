"""One-row-per-run overview table (markdown), read from the runs' metrics.json / scores.csv."""
import json, sys
from pathlib import Path
import numpy as np, pandas as pd
from sklearn.metrics import roc_auc_score
R = Path("outputs/ref")
f = lambda x: "–" if x is None else f"{x:.2f}"
def row(run, held):
    d = R / run
    v = json.load(open(d / "eval_gan_test/metrics.json"))["results"][0]["video"]
    ts = pd.read_csv(d / "eval_gan_test/scores.csv"); ts = ts[ts.level == "frame"]
    t90 = float(np.quantile(ts[ts.y == 1].prob, 0.10, method="lower"))
    cs = pd.read_csv(d / "eval_cross/scores.csv"); cs = cs[cs.level == "frame"]
    thr = float(v["threshold"])
    def rate(src, lab, t): s = cs[(cs.source == src) & (cs.label == lab)]; return float((s.prob >= t).mean())
    def pauc(r, fk):
        a = cs[(cs.source == r) & (cs.label == "real")].prob; b = cs[(cs.source == fk)].prob
        return roc_auc_score(np.r_[np.zeros(len(a)), np.ones(len(b))], np.r_[a, b])
    c = v["ci95"]["auc"]
    vid = f"{f(rate('videos','real',thr))} / {f(rate('videos','real',t90))}"
    pho = f"{f(rate('photos','real',thr))} / {f(rate('photos','real',t90))}"
    if "photos" not in held:  # photos were trained on: show the unseen test-split photos separately
        tp = cs[(cs.source == "photos") & (cs.split == "test")]
        pho = f"({pho} incl. train) test split only ({len(tp)} crops): {f(float((tp.prob >= thr).mean()))} / {f(float((tp.prob >= t90).mean()))}"
    if "videos" not in held:  # videos were trained on: the all-rows figure is mostly training crops
        tv = cs[(cs.source == "videos") & (cs.split == "test")]
        vid = f"({vid} incl. train) test video only: {f(float((tv.prob >= thr).mean()))} / {f(float((tv.prob >= t90).mean()))}"
    return (f"| {run} | {held} | {v['auc']:.3f} [{c[0]:.3f}, {c[1]:.3f}] | {f(v['fpr_at_threshold'])} / {f(v['tpr_at_threshold'])} | "
            f"{pho} | {vid} | "
            f"{f(rate('crops','fake',thr))} / {f(rate('crops','fake',t90))} | {f(rate('sbi-photos','fake',thr))} / {f(rate('sbi-photos','fake',t90))} | "
            f"{pauc('photos','sbi-photos'):.2f} |")
print("| run | not trained on | in-domain AUC [95% CI] | in-domain FPR / detection (stored thr) | photos FPR: stored / t90 | "
      "videos FPR: stored / t90 | crops/fake detected: stored / t90 | SBI-photos detected: stored / t90 | AUC photos vs own SBI |")
print("|---|---|---|---|---|---|---|---|---|")
for a in sys.argv[1:]:
    run, held = a.split(":")
    if (R / run / "eval_cross/metrics.json").exists(): print(row(run, held))
