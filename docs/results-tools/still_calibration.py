"""Re-score a fused model's still images with a stacker standardised on real stills (predict records in, records out).

The `mean` stacker (evaluation/stacking.py) standardises each expert's calibrated logit on the validation real
*video* crops and sets one threshold over those videos. This asks whether stills need their own scale: each still's
per-face contributions (predict's `faces[].experts`, weight x calibrated logit) are turned back into calibrated
logits, standardised on the faces of CALIBRATION (predict's records of real stills from a validation split, e.g. the
val real portraits of gan-faces), averaged, and thresholded at 5% FPR of those stills. Videos keep their scores.

    python docs/results-tools/still_calibration.py STACKER.json CALIBRATION.jsonl RECORDS.jsonl OUT.jsonl
    deepdetect-evaluate-records OUT.jsonl --labels ... (the same labels as for RECORDS)
"""
import json
import sys

import numpy as np
import pandas as pd

from deepdetect.evaluation.stacking import standardised_mean, threshold_over_reals


def faces_x(rec, weights):
    return np.array([[face["experts"][e] / weights[e] for e in weights] for face in rec["faces"]])


def main(stacker_path, calibration_path, records_path, out_path, target_fpr=0.05):
    stacker = json.load(open(stacker_path))
    weights = {e: float(stacker["weights"][e]) for e in stacker["experts"]}
    calib = [json.loads(line) for line in open(calibration_path)]
    calib = [r for r in calib if r["status"] == "ok" and r["kind"] == "image"]
    faces = pd.concat(  # one row per face, every still one "video": the stacker's own standardisation
        pd.DataFrame(faces_x(r, weights), columns=[f"x_{e}" for e in weights]).assign(video_id=r["path"], label="real")
        for r in calib
    )
    still_w, still_b = standardised_mean(faces, list(weights))

    def score(rec):
        return float(np.mean(1.0 / (1.0 + np.exp(-(faces_x(rec, weights) @ still_w + still_b)))))

    threshold = threshold_over_reals(np.array([score(r) for r in calib]), target_fpr)
    print(
        json.dumps(
            {
                "calibration_stills": len(calib),
                "video_weights": weights,
                "video_bias": stacker["bias"],
                "still_weights": dict(zip(weights, still_w.round(4).tolist())),
                "still_bias": round(still_b, 4),
                "still_threshold": threshold,
                "video_threshold": stacker["threshold"],
            }
        )
    )
    with open(out_path, "w") as out:
        for line in open(records_path):
            rec = json.loads(line)
            if rec["status"] == "ok" and rec["kind"] == "image":
                rec["score"] = score(rec)
                rec["threshold"] = threshold
                rec["label"] = "fake" if rec["score"] >= threshold else "real"
            out.write(json.dumps(rec) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:5])
