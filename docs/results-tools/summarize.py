"""Markdown tables of the reference runs, read from their metrics.json / scores.csv (nothing typed by hand)."""
import json, sys
from pathlib import Path
import numpy as np, pandas as pd
R = Path("outputs/ref")
f = lambda x: "–" if x is None else f"{x:.3f}"
ci = lambda c: "–" if not c or c[0] is None else f"[{c[0]:.3f}, {c[1]:.3f}]"
def cboot(ss, thr, n=1000):
    """95% CI of the crop-level rate (prob >= thr) resampling videos/photos (clusters) with replacement."""
    g = [x.values for _, x in ss.groupby("video_id").prob]
    if len(g) < 2: return None
    rng = np.random.default_rng(0); out = []
    for _ in range(n):
        pick = rng.integers(len(g), size=len(g)); a = np.concatenate([g[i] for i in pick]); out.append((a >= thr).mean())
    return [float(np.quantile(out, .025)), float(np.quantile(out, .975))]
def inv(c): return None if not c or c[0] is None else [1 - c[1], 1 - c[0]]
for run in sys.argv[1:]:
    d = R / run
    if not (d / "eval_cross/metrics.json").exists():
        print(f"\n### {run}: not finished"); continue
    tm = json.load(open(d / "eval_gan_test/metrics.json"))["results"][0]
    v = tm["video"]
    print(f"\n### {run}\n")
    print(f"In-domain (gan-faces test, `{d}/eval_gan_test/metrics.json`): AUC {f(v['auc'])} {ci(v['ci95']['auc'])} "
          f"(n={v['n_real']} real / {v['n_fake']} fake); at the stored threshold {f(v['threshold'])}: FPR {f(v['fpr_at_threshold'])}, "
          f"detection {f(v['tpr_at_threshold'])}; TPR@1%FPR {f(v['tpr_at_fpr_1pct'])}\n")
    ts = pd.read_csv(d / "eval_gan_test/scores.csv"); ts = ts[ts.level == "frame"]
    t90 = float(np.quantile(ts[ts.y == 1].prob, 0.10, method="lower"))  # >= 90% of in-domain test fakes at or above
    cs = pd.read_csv(d / "eval_cross/scores.csv"); cs = cs[cs.level == "frame"]
    cm = json.load(open(d / "eval_cross/metrics.json"))
    print(f"Cross-source (`{d}/eval_cross/metrics.json`, split=all; rates per crop, crop-level 95% CIs: 1000 cluster-bootstrap resamples of videos/photos by this script; video-level CIs: the toolkit's ci95.accuracy (1−acc for reals)); "
          f"last column: rate at t90 = {t90:.3f}, the threshold keeping 90% of in-domain test fakes (from `eval_gan_test/scores.csv`)\n")
    print("| source | label | n crops (videos) | crop rate at stored thr [95% CI] | video-level rate (toolkit) [toolkit 95% CI] | crop rate at t90 [95% CI] |\n|---|---|---|---|---|---|")
    for r in cm["results"]:
        for row in r["breakdown"]["source"]["frame"]:
            s = row["source"]
            sub = cs[(cs.manifest == r["manifest_name"]) & (cs.source == s)]
            for lab, key in (("real", "fpr"), ("fake", "detection_rate")):
                if row[key] is None: continue
                ss = sub[sub.label == lab]
                single = (row["n_real"] == 0) or (row["n_fake"] == 0)
                c = r["video"]["ci95"]["accuracy"] if single else None
                c = inv(c) if (lab == "real" and c) else c
                vr = [x for x in r["breakdown"]["source"]["video"] if x["source"] == s][0][key]
                thr = float(r["video"]["threshold"])
                print(f"| {s} | {lab} ({'FPR' if lab=='real' else 'detected'}) | {len(ss)} ({ss.video_id.nunique()}) | {f(row[key])} {ci(cboot(ss, thr))} | "
                      f"{f(vr)} {ci(c)} | {f(float((ss.prob >= t90).mean()))} {ci(cboot(ss, t90))} |")
    rob = [(r["manifest_name"], r.get("robustness")) for r in [tm] + cm["results"] if r.get("robustness")]
    if rob:
        print("\nSame crops perturbed before scoring (toolkit `results[i].robustness`, frame level, stored threshold; "
              "in-domain row from eval_gan_test):\n\n| manifest | perturbation | AUC | FPR | detection |\n|---|---|---|---|---|")
        for name, rb in rob:
            for k, x in rb.items():
                print(f"| {name} | {k} | {f(x.get('auc'))} | {f(x.get('fpr_at_threshold'))} | {f(x.get('tpr_at_threshold'))} |")
    from sklearn.metrics import roc_auc_score
    for real, fake in (("photos", "sbi-photos"), ("videos", "sbi-videos")):
        a = cs[(cs.source == real) & (cs.label == "real")]; b = cs[(cs.source == fake) & (cs.label == "fake")]
        if len(a) and len(b):
            print(f"\nAUC {real} reals vs their own SBI fakes ({fake}), crop level, from eval_cross/scores.csv: "
                  f"{roc_auc_score(np.r_[np.zeros(len(a)), np.ones(len(b))], np.r_[a.prob, b.prob]):.3f}")
    hp = d / "holdout_eval/metrics.json"
    if hp.exists():
        h = json.load(open(hp))["results"][0]["holdout"]
        print(f"\nLOSO holdout (`{hp}`): held-out source `{h['source']}`:")
        for part in ("heldout", "in_domain"):
            b = h[part]
            if not b: continue
            for lvl in ("frame", "video"):
                x = b[lvl]
                print(f"- {part} {lvl}: n={x['n']} (real {x['n_real']}, fake {x['n_fake']}), AUC {f(x.get('auc'))} {ci((x.get('ci95') or {}).get('auc'))}, "
                      f"FPR {f(x.get('fpr_at_threshold'))}, detection {f(x.get('tpr_at_threshold'))}, acc CI {ci((x.get('ci95') or {}).get('accuracy'))}")
    tr = json.load(open(d / "metrics.json"))
    print(f"\nTraining (`{d}/metrics.json`): epochs run {tr['epochs_run']}, best epoch {tr['best_epoch']}, best val video AUC {f(tr['best'])}, "
          f"stored threshold {f(tr['calibration']['threshold'])} ({tr['calibration']['threshold_rule']} at {tr['calibration']['target_fpr']})")
