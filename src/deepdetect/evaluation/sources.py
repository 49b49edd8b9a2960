"""Per-source evaluation and the leave-one-source-out split (issue 8: expose source shortcuts)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def holdout_split(df: pd.DataFrame, source: str, column: str = "source") -> pd.DataFrame:
    """Copy of a manifest with every row of `source` moved to the `test` split; other rows keep their split."""
    if column not in df.columns:
        raise ValueError(f"manifest has no {column!r} column to hold a source out by")
    mask = df[column].astype(str) == str(source)
    if not mask.any():
        known = sorted(df[column].astype(str).unique().tolist())
        raise ValueError(f"source {source!r} not found in column {column!r}; known sources: {known}")
    out = df.copy()
    out.loc[mask, "split"] = "test"
    return out


def _rate_fns(threshold: float) -> dict[str, Any]:
    """FPR on reals and detection rate on fakes at `threshold`, as bootstrap metric functions."""

    def fpr(y: np.ndarray, s: np.ndarray) -> float:
        if not (y == 0).any():
            raise ValueError("no reals")
        return float((s[y == 0] >= threshold).mean())

    def detection_rate(y: np.ndarray, s: np.ndarray) -> float:
        if not (y == 1).any():
            raise ValueError("no fakes")
        return float((s[y == 1] >= threshold).mean())

    return {"fpr": fpr, "detection_rate": detection_rate}


def _group_row(
    sub: pd.DataFrame, threshold: float, label_col: str, score_col: str, boot_n: int = 0, seed: int = 0
) -> dict[str, object]:
    """Counts, AUC (both classes only), real-side FPR and fake-side detection rate for one group.

    With `boot_n` > 0 the two rates get 95% intervals from resampling whole videos (`video_id`) of the group.
    """
    from deepdetect.evaluation.metrics import bootstrap_cis, rates_at_threshold, roc_auc

    y = sub[label_col].to_numpy()
    s = sub[score_col].to_numpy(dtype="float64")
    rates = rates_at_threshold(y, s, threshold)
    both = rates["n_real"] > 0 and rates["n_fake"] > 0
    row: dict[str, object] = {
        "n": len(sub),
        "n_real": rates["n_real"],
        "n_fake": rates["n_fake"],
        "auc": roc_auc(y, s) if both else float("nan"),
        "fpr": rates["fpr"],
        "false_positives": rates["false_positives"],
        "detection_rate": rates["tpr"],
        "true_positives": rates["true_positives"],
    }
    if boot_n > 0 and "video_id" in sub.columns:
        cis = bootstrap_cis(sub, _rate_fns(threshold), "video_id", boot_n, seed, label_col, score_col)
        row["fpr_ci95"] = list(cis["fpr"])
        row["detection_rate_ci95"] = list(cis["detection_rate"])
    return row


def group_table(
    df: pd.DataFrame,
    by: str,
    threshold: float,
    label_col: str = "y",
    score_col: str = "prob",
    boot_n: int = 0,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per value of `by`: n, n_real, n_fake, AUC (NaN unless both classes), FPR on reals, detection rate.

    With `boot_n` > 0, `fpr_ci95` and `detection_rate_ci95` hold 95% intervals resampling videos within the group.
    """
    if by not in df.columns:
        raise ValueError(f"no {by!r} column to break down by")
    rows = []
    for value, sub in df.groupby(df[by].astype(str), sort=True):
        row = _group_row(sub, threshold, label_col, score_col, boot_n, seed)
        rows.append({by: value if value != "" else "(none)", **row})
    return pd.DataFrame(rows)


def fpr_is_far_above(fpr: float, reference_fpr: float) -> bool:
    """True when `fpr` exceeds max(2 x reference, reference + 5 points) — the issue-8 warning rule."""
    if fpr != fpr:  # NaN: no reals in that source
        return False
    return fpr > max(2.0 * reference_fpr, reference_fpr + 0.05)


def source_warnings(table: pd.DataFrame, reference_fpr: float, by: str = "source") -> list[str]:
    """Warnings for every real-bearing source whose FPR at the stored threshold is far above the validation FPR."""
    out = []
    for row in table.itertuples(index=False):
        rec = row._asdict()
        if rec["n_real"] > 0 and fpr_is_far_above(float(rec["fpr"]), reference_fpr):
            out.append(
                f"{by} {rec[by]!r}: {rec['false_positives']}/{rec['n_real']} real crops flagged fake "
                f"(FPR {rec['fpr']:.1%}) vs validation FPR {reference_fpr:.1%} — the detector may have learned "
                "this source's look rather than fakery"
            )
    return out
