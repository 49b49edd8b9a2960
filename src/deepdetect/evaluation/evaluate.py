"""`evaluate(cfg)`: score manifests with trained detectors; write metrics.json, scores.csv and report.html."""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig
from tqdm import tqdm

from deepdetect.contract import Preprocess
from deepdetect.contract.preprocess import prepare_batch
from deepdetect.data.manifest import ManifestError, binary_labels, read_manifests
from deepdetect.evaluation import metrics as M
from deepdetect.evaluation.aggregate import aggregate_videos
from deepdetect.evaluation.calibration import apply_temperature
from deepdetect.evaluation.explain import build_explanations
from deepdetect.evaluation.perturb import Perturbation, get_perturbation
from deepdetect.evaluation.report import write_report
from deepdetect.evaluation.runs import LoadedRun, load_crop, load_run
from deepdetect.evaluation.scorefile import write_scores
from deepdetect.evaluation.settings import EvalSettings, MetricSettings
from deepdetect.evaluation.sources import group_table, source_warnings
from deepdetect.models.detector import Detector
from deepdetect.models.scoring import score_batches
from deepdetect.utils.device import resolve_device
from deepdetect.utils.io import atomic_write_text

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
BREAKDOWN_COLUMNS = ("source", "dataset", "method", "compression")
CI_METRICS: dict[str, M.MetricFn] = {
    "auc": M.roc_auc,
    "ap": M.average_precision,
    "eer": M.eer,
}


def score_crops(
    model: Detector,
    paths: list[str],
    preprocess: Preprocess,
    batch_size: int = 64,
    device: torch.device | None = None,
    perturb: Perturbation | None = None,
    desc: str = "scoring",
) -> np.ndarray:
    """Logits for each crop path (NaN where the file cannot be read)."""
    out = np.full(len(paths), np.nan, dtype=np.float64)
    readable: list[int] = []

    def batches() -> Iterator[np.ndarray]:
        starts = range(0, len(paths), batch_size)
        for start in tqdm(starts, desc=desc, leave=False, disable=len(paths) <= batch_size):
            idx, crops = [], []
            for i in range(start, min(start + batch_size, len(paths))):
                crop = load_crop(paths[i])
                if crop is not None:
                    idx.append(i)
                    crops.append(perturb(crop) if perturb is not None else crop)
            if crops:
                readable.extend(idx)
                yield prepare_batch(crops, preprocess)

    logits = score_batches(model, batches(), device or torch.device("cpu"))
    out[readable] = logits
    return out


def _clean(obj: Any) -> Any:
    """JSON-safe copy: NaN/inf -> None, numpy scalars -> Python."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def level_metrics(df: pd.DataFrame, threshold: float, boot_n: int, seed: int, group_col: str) -> dict[str, Any]:
    """compute_metrics on (y, prob) plus bootstrap CIs resampling `group_col`."""
    result: dict[str, Any] = dict(M.compute_metrics(df["y"].to_numpy(), df["prob"].to_numpy(), threshold))
    ci_fns: dict[str, M.MetricFn] = {
        **CI_METRICS,
        "accuracy": lambda y, s: M.accuracy(y, s, threshold),
        "balanced_accuracy": lambda y, s: M.balanced_accuracy(y, s, threshold),
    }
    cis = M.bootstrap_cis(df, ci_fns, group_col=group_col, n=boot_n, seed=seed) if boot_n > 0 else {}
    result["ci95"] = {k: list(v) for k, v in cis.items()}
    return result


def _breakdowns(
    frames: pd.DataFrame, videos: pd.DataFrame, threshold: float, boot_n: int = 0, seed: int = 0
) -> dict[str, Any]:
    """Per-group tables at frame and video level for every breakdown column; source rates get bootstrap CIs."""
    out: dict[str, Any] = {}
    for col in BREAKDOWN_COLUMNS:
        if col not in frames.columns:
            continue
        vid = videos.rename(columns={"score": "prob"})
        n = boot_n if col == "source" else 0
        out[col] = {
            "frame": group_table(frames, col, threshold, boot_n=n, seed=seed).to_dict(orient="records"),
            "video": group_table(vid, col, threshold, boot_n=n, seed=seed).to_dict(orient="records"),
        }
    return out


def evaluate_frames(
    frames: pd.DataFrame,
    run: LoadedRun,
    settings: MetricSettings,
    robustness_logits: dict[str, np.ndarray] | None = None,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """All metrics for scored frames (columns y, logit, prob, video_id, ...); returns (result, video table)."""
    n, seed = settings.bootstrap_n, settings.bootstrap_seed
    videos = aggregate_videos(frames, "prob", method=settings.aggregate, k=settings.k, label_col="label")
    videos["y"] = (videos["label"] == "fake").astype("int64")
    vprob = videos.rename(columns={"score": "prob"})
    result: dict[str, Any] = {
        "n_frames": len(frames),
        "n_videos": len(videos),
        "frame": level_metrics(frames, run.threshold, n, seed, "video_id"),
        "video": level_metrics(vprob, run.threshold, n, seed, "video_id"),
        "breakdown": _breakdowns(frames, videos, run.threshold, n, seed),
    }
    src = group_table(frames, "source", run.threshold) if "source" in frames.columns else pd.DataFrame()
    result["source_warnings"] = source_warnings(src, run.reference_fpr) if len(src) else []
    for w in result["source_warnings"]:
        log.warning(w)
    if robustness_logits:
        rob: dict[str, Any] = {}
        for name, logits in robustness_logits.items():
            probs = apply_temperature(logits, run.temperature)
            ok = np.isfinite(probs)
            y = frames["y"].to_numpy()[ok]
            p = probs[ok]
            both = len(set(y.tolist())) == 2
            rob[name] = {
                "auc": M.roc_auc(y, p) if both else float("nan"),
                "fpr_at_threshold": M.rates_at_threshold(y, p, run.threshold)["fpr"],
                "tpr_at_threshold": M.rates_at_threshold(y, p, run.threshold)["tpr"],
            }
        result["robustness"] = rob
    return result, videos


def holdout_report(frames: pd.DataFrame, run: LoadedRun, settings: MetricSettings, source: str) -> dict[str, Any]:
    """Leave-one-source-out: metrics on the held-out source separately from the in-domain rows."""
    mask = frames["source"].astype(str) == str(source)
    if not mask.any():
        log.warning("holdout_source %r is not among the evaluated rows' sources; no held-out figures", source)
    out: dict[str, Any] = {"source": str(source)}
    for name, part in (("heldout", frames[mask]), ("in_domain", frames[~mask])):
        if len(part) == 0:
            out[name] = None
            continue
        res, _ = evaluate_frames(part.reset_index(drop=True), run, settings)
        out[name] = {
            "n_frames": res["n_frames"],
            "n_videos": res["n_videos"],
            "frame": res["frame"],
            "video": res["video"],
        }
    return out


def _load_frames(manifest: str | tuple[str, ...], split: str, holdout_source: str | None = None) -> pd.DataFrame:
    """Labelled rows of the requested split (`all` = every row) of one manifest or several combined.

    With a held-out source, every row of that source is kept whatever its split: training never saw it.
    """
    df = read_manifests(manifest)
    if split != "all":
        keep = df["split"] == split
        if holdout_source:
            keep |= df["source"] == holdout_source
        df = df[keep].reset_index(drop=True)
    df = df[df["label"] != "unknown"].reset_index(drop=True)
    if len(df) == 0:
        raise ManifestError(f"{manifest}: no labelled rows in split {split!r}")
    df["y"] = binary_labels(df)
    return df


def with_sbi_rows(frames: pd.DataFrame, out_dir: Path, seed: int) -> pd.DataFrame:
    """The rows plus a self-blended fake of each real row (written under `out_dir`; source `sbi-<source>`)."""
    from deepdetect.data.sbi import write_sbi_manifest

    sbi = read_manifests(write_sbi_manifest(frames, out_dir, seed))
    sbi["y"] = binary_labels(sbi)
    log.info("added %d self-blended fakes of the real rows (sources sbi-*)", len(sbi))
    return pd.concat([frames, sbi], ignore_index=True)


def _manifest_name(manifest: str | tuple[str, ...]) -> str:
    """A short name for tables: the manifest's folder name (joined with + for a combined set)."""
    paths = [manifest] if isinstance(manifest, str) else list(manifest)
    return "+".join(Path(p).parent.name or Path(p).stem for p in paths)


def summary_row(result: dict[str, Any]) -> dict[str, Any]:
    """One line of the cross-dataset / comparison table."""
    row: dict[str, Any] = {"run": result["run"], "manifest": result["manifest_name"]}
    for level in ("frame", "video"):
        m = result[level]
        for key in ("auc", "ap", "eer", "balanced_accuracy", "fpr_at_threshold", "tpr_at_threshold"):
            row[f"{level}_{key}"] = m.get(key)
        row[f"{level}_auc_ci95"] = m.get("ci95", {}).get("auc")
    src = result["breakdown"].get("source", {}).get("frame", [])
    fprs = [r["fpr"] for r in src if r["n_real"] > 0]
    row["worst_source_fpr"] = max(fprs) if fprs else None
    row["n_source_warnings"] = len(result["source_warnings"])
    return row


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Evaluate every (checkpoint, manifest) pair; write metrics.json, scores.csv and report.html under output_dir."""
    return evaluate_settings(EvalSettings.from_config(cfg))


def evaluate_settings(settings: EvalSettings) -> dict[str, Any]:
    """`evaluate()` on typed settings."""
    out_dir = settings.output_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    device = resolve_device(settings.device)
    perturbs = {name: get_perturbation(name) for name in settings.robustness}  # fail fast on bad names
    results: list[dict[str, Any]] = []
    score_tables: list[pd.DataFrame] = []
    explain_inputs: list[tuple[LoadedRun, pd.DataFrame]] = []
    for ckpt in settings.checkpoints:
        run = load_run(ckpt, device, settings.metrics.target_fpr)
        for manifest in settings.manifests:
            frames, scored = score_manifest(run, manifest, settings, device)
            rob_logits = {
                name: score_crops(
                    run.model, scored["abs_crop_path"].tolist(), run.preprocess, settings.batch_size, device, fn, name
                )
                for name, fn in perturbs.items()
            }
            result, videos = evaluate_frames(scored, run, settings.metrics, rob_logits)
            if settings.holdout_source:
                result["holdout"] = holdout_report(scored, run, settings.metrics, settings.holdout_source)
            result = {**result_header(run, manifest, settings.split, int((frames["status"] != "ok").sum())), **result}
            results.append(result)
            score_tables.append(_score_rows(frames, scored, videos, run, result))
            explain_inputs.append((run, scored))
    metrics = write_outputs(settings, results, score_tables)
    if settings.report:
        run0, scored0 = explain_inputs[0]
        explanations = build_explanations(run0, scored0, settings.gradcam, device)
        write_report(out_dir / "report.html", metrics, pd.concat(score_tables, ignore_index=True), explanations)
    log.info("wrote %s", out_dir / "metrics.json")
    return metrics


def score_manifest(
    run: LoadedRun, manifest: str | tuple[str, ...], settings: EvalSettings, device: torch.device
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(every row with its logit and status, the readable rows with calibrated `prob`) of one manifest."""
    frames = _load_frames(manifest, settings.split, settings.holdout_source)
    if settings.sbi_fakes:
        frames = with_sbi_rows(frames, settings.output_dir / "sbi" / _manifest_name(manifest), settings.seed)
    logits = score_crops(run.model, frames["abs_crop_path"].tolist(), run.preprocess, settings.batch_size, device)
    frames["logit"] = logits
    missing = ~np.isfinite(logits)
    if missing.any():
        log.warning("%d of %d crops could not be read and are left out", int(missing.sum()), len(frames))
    frames["status"] = np.where(missing, "unreadable", "ok")
    scored = frames[~missing].reset_index(drop=True)
    if len(scored) == 0:
        raise ManifestError(f"{manifest}: none of the crops could be read")
    scored["prob"] = apply_temperature(scored["logit"].to_numpy(), run.temperature)
    return frames, scored


def result_header(run: LoadedRun, manifest: str | tuple[str, ...], split: str, n_unreadable: int) -> dict[str, Any]:
    """What a result is about: run, checkpoint, manifest, split, model spec and the calibration applied."""
    return {
        "run": run.name,
        "checkpoint": run.path,
        "manifest": manifest if isinstance(manifest, str) else list(manifest),
        "manifest_name": _manifest_name(manifest),
        "split": split,
        "model": run.meta.get("model"),
        "model_card": {
            "name": run.card.name,
            "version": run.card.version,
            "training_data": run.card.training_data,
            "init_weights": run.card.init_weights,
        },
        "calibration": {
            "temperature": run.temperature,
            "threshold": run.threshold,
            "threshold_rule": run.threshold_rule,
            "reference_fpr": run.reference_fpr,
            "reference_fpr_from": run.reference_fpr_from,
        },
        "n_unreadable": n_unreadable,
    }


def write_outputs(
    settings: EvalSettings, results: list[dict[str, Any]], score_tables: list[pd.DataFrame]
) -> dict[str, Any]:
    """Write metrics.json and scores.csv; returns the metrics document."""
    metrics = {
        "schema_version": SCHEMA_VERSION,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "aggregation": {"method": settings.metrics.aggregate, "k": settings.metrics.k},
        "bootstrap": {
            "n": settings.metrics.bootstrap_n,
            "seed": settings.metrics.bootstrap_seed,
            "resample": "video_id",
        },
        "warning_rule": "source FPR > max(2 x reference FPR, reference FPR + 0.05)",
        "results": results,
        "summary": [summary_row(r) for r in results],
        "config": settings.config,
    }
    metrics = _clean(metrics)
    atomic_write_text(settings.output_dir / "metrics.json", json.dumps(metrics, indent=2))
    # spreadsheet-safe: text cells (paths, sources) that look like formulas get a leading `'`, every one quoted
    write_scores(pd.concat(score_tables, ignore_index=True), settings.output_dir / "scores.csv", SCORE_COLUMNS)
    return metrics


SCORE_COLUMNS = (
    "run",
    "manifest",
    "level",
    "video_id",
    "crop_path",
    "label",
    "y",
    "logit",
    "prob",
    "pred",
    "n_frames",
    "dataset",
    "source",
    "method",
    "compression",
    "split",
    "status",
    # which crop of which file: what a fusion of several runs' scores joins on (evaluation/stacking.py)
    "source_path",
    "frame_index",
    "group",
)


def _score_rows(
    frames: pd.DataFrame, scored: pd.DataFrame, videos: pd.DataFrame, run: LoadedRun, result: dict[str, Any]
) -> pd.DataFrame:
    """Per-crop (level=frame, including unreadable rows) and per-video (level=video) scores in one table."""
    f = frames.copy()
    f["prob"] = apply_temperature(f["logit"].to_numpy(), run.temperature)
    f["level"] = "frame"
    f["n_frames"] = 1
    f["frame_index"] = f["frame_index"].astype("Int64")  # a video row has none: the cell stays empty
    v = videos.rename(columns={"score": "prob"}).copy()
    v["level"], v["crop_path"], v["logit"], v["status"] = "video", "", np.nan, "ok"
    both = pd.concat([f, v], ignore_index=True)
    both["pred"] = np.where(both["prob"].isna(), "", np.where(both["prob"] >= run.threshold, "fake", "real"))
    both["run"], both["manifest"] = result["run"], result["manifest_name"]
    return both.reindex(columns=list(SCORE_COLUMNS))
