"""The reference detector on the development data: extract -> train the experts -> fuse -> evaluate -> export.

Each source of `configs/reference.yaml` is extracted with the same detector, margin and crop size (its own
group pattern keeps people and original/swap pairs in one split). Every expert trains on the `train` sources'
train split and is evaluated alone on their test split and on the `unseen` sources, which are never trained on and
are scored whole, so their false-positive rate says how the stored threshold holds on real content from elsewhere.
A source of role `reals` gives only its real faces, to the experts that list it in `expert_sources`. With more than
one expert, a stacker fitted on the val split of what the experts trained on (evaluation/stacking.py) fuses them; the
fused model is scored the same way, from the per-crop scores each expert's evaluation saved (its
scores.csv), and exported as one ONNX that lists its experts. With one expert, that model is the reference.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

log = logging.getLogger(__name__)

ROLES = ("train", "reals", "unseen")


class ReferenceError(ValueError):
    """Raised when the development data or a configured source is missing."""


@dataclass
class ReferenceResult:
    """Where each stage wrote its outputs, and the headline figures (the fused model's when experts are fused)."""

    manifests: dict[str, Path]
    runs: dict[str, Path]
    reports: dict[str, Path]
    onnx_model: Path
    headline: dict[str, Any] = field(default_factory=dict)
    stacker: Path | None = None


def source_paths(cfg: DictConfig) -> dict[str, Path]:
    """Each configured source's input folder under `data_root`; raises ReferenceError for missing ones."""
    from deepdetect.utils.devdata import source_folders

    return source_folders(cfg.get("data_root"), cfg.sources.items(), ROLES, ReferenceError)


def expert_recipes(cfg: DictConfig) -> dict[str, list[str]]:
    """The experts to train (name: train overrides); raises ReferenceError when there are none."""
    experts = {str(name): [str(o) for o in overrides or []] for name, overrides in (cfg.get("experts") or {}).items()}
    if not experts:
        raise ReferenceError("experts: name at least one (name: [train overrides])")
    bad = [n for n in experts if not n.isidentifier()]
    if bad:
        raise ReferenceError(f"experts: names must be identifiers (letters, digits, _), not {bad}")
    return experts


def expert_sources(cfg: DictConfig, experts: dict[str, list[str]]) -> dict[str, list[str]]:
    """Each expert's extra sources (role `reals`: their real faces only, beside the train sources); raises
    ReferenceError for an unknown expert or a source that is not of role `reals`."""
    extra = {str(name): [str(s) for s in sources or []] for name, sources in (cfg.get("expert_sources") or {}).items()}
    unknown = sorted(set(extra) - set(experts))
    if unknown:
        raise ReferenceError(f"expert_sources: {unknown} are not experts ({list(experts)})")
    for name, sources in extra.items():
        wrong = [s for s in sources if s not in cfg.sources or str(cfg.sources[s].role) != "reals"]
        if wrong:
            raise ReferenceError(f"expert_sources.{name}: {wrong} are not sources of role reals")
    return {name: extra.get(name, []) for name in experts}


def run_reference(cfg: DictConfig) -> ReferenceResult:
    """Run the reference recipe under `cfg.output_dir`; every stage is the library function its CLI calls."""
    from deepdetect.data.extract_sources import extract_sources
    from deepdetect.data.manifest import write_reals
    from deepdetect.export.pipeline import export
    from deepdetect.training.train import train
    from deepdetect.utils.config import compose_stage

    stages = list(cfg.get("stage_overrides") or [])  # debug=fast: every stage gets the fast overlay too
    experts = expert_recipes(cfg)
    extra_sources = expert_sources(cfg, experts)

    out = Path(str(cfg.output_dir)).resolve()
    inputs = source_paths(cfg)
    manifests = extract_sources(
        {name: (path, [*cfg.extract, *cfg.sources[name].extract]) for name, path in inputs.items()}, out, stages
    )
    trained = [str(manifests[n]) for n in inputs if cfg.sources[n].role == "train"]
    unseen = [str(manifests[n]) for n in inputs if cfg.sources[n].role == "unseen"]
    used = sorted({s for sources in extra_sources.values() for s in sources})
    reals = {n: str(write_reals(manifests[n], out / "reals_only" / n / "manifest.csv")) for n in used}
    evals = {"test": (trained, "test")}
    if unseen:
        evals["unseen_real"] = (unseen, "all")

    runs: dict[str, Path] = {}
    reports: dict[str, Path] = {}
    saved: dict[str, dict[str, Path]] = {key: {} for key in evals}  # evaluation -> expert -> its scores.csv
    headline: dict[str, Any] = {}
    for name, overrides in experts.items():
        run_dir = out / "train" if len(experts) == 1 else out / "experts" / name
        log.info("[train %s] %s", name, run_dir)
        items = [*trained, *(reals[s] for s in extra_sources[name])]
        train(
            compose_stage("train", [f"data.manifest=[{','.join(items)}]", f"output_dir={run_dir}", *overrides, *stages])
        )
        runs[name] = run_dir
        prefix = "" if len(experts) == 1 else f"{name}_"
        for key, (items, split) in evals.items():
            ev_dir = out / f"evaluate_{prefix}{key}"
            log.info("[evaluate %s%s] %s", prefix, key, ev_dir)
            metrics = _evaluate(cfg, stages, run_dir, items, split, ev_dir)
            reports[f"{prefix}{key}"] = ev_dir / "report.html"
            saved[key][name] = ev_dir / "scores.csv"
            headline[f"{prefix}{key}"] = _headline((metrics.get("results") or [{}])[0].get("video") or {})

    export_dir = out / "export"
    log.info("[export] %s", export_dir)
    if len(runs) == 1:
        checkpoint = next(iter(runs.values()))
        export(compose_stage("export", [f"checkpoint={checkpoint}", f"output_dir={export_dir}", *cfg.export, *stages]))
        return ReferenceResult(manifests, runs, reports, export_dir / "model.onnx", headline)
    validation = [*trained, *reals.values()]  # every source an expert trained on: their val reals fit the stacker
    stacker, fused = fuse_experts(cfg, stages, runs, validation, evals, out / "fusion", saved)
    headline = {**fused, **headline}
    export(compose_stage("export", [f"fusion={stacker}", f"output_dir={export_dir}", *cfg.export, *stages]))
    return ReferenceResult(manifests, runs, reports, export_dir / "model.onnx", headline, stacker)


def _evaluate(
    cfg: DictConfig, stages: list[str], run_dir: Path, items: list[str], split: str, ev_dir: Path
) -> dict[str, Any]:
    from deepdetect.evaluation.evaluate import evaluate
    from deepdetect.utils.config import compose_stage

    overrides = [f"checkpoint={run_dir}", f"data.manifest=[{','.join(items)}]", f"data.split={split}"]
    return evaluate(compose_stage("evaluate", [*overrides, f"output_dir={ev_dir}", *cfg.evaluate, *stages]))


def fuse_experts(
    cfg: DictConfig,
    stages: list[str],
    runs: dict[str, Path],
    trained: list[str],
    evals: dict[str, tuple[list[str], str]],
    out: Path,
    saved: dict[str, dict[str, Path]] | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Fit the stacker on the val split of `trained` (the manifests the experts trained on), write
    `out/stacker.json` (what `deepdetect-export fusion=...` reads) and the fused model's metrics per evaluation;
    returns the stacker file and the headlines.

    `saved[key][expert]`: the scores.csv of that expert's own evaluation `key`, read instead of scoring the same
    crops again where it covers them (evaluation/stacking.py `saved_scores`); the val rows are always scored."""
    from deepdetect.evaluation.settings import MetricSettings
    from deepdetect.evaluation.stacking import (
        apply_stacker,
        crop_rows,
        drivers_summary,
        expert_features,
        fit_on_validation,
        fused_metrics,
        saved_scores,
        validation_rows,
    )
    from deepdetect.utils.config import compose_stage
    from deepdetect.utils.io import atomic_write_text

    started = time.perf_counter()
    seed = int(cfg.get("seed", 0))
    names = list(runs)
    log.info("[fuse %s] stacker=%s on the val split -> %s", "+".join(names), cfg.stacker, out)
    val = expert_features(runs, validation_rows([Path(m) for m in trained], out, seed))
    w, b, info = fit_on_validation(val, names, str(cfg.stacker), float(cfg.target_fpr), seed)
    metric = MetricSettings.from_config(compose_stage("evaluate", [*cfg.evaluate, *stages]))
    headline: dict[str, Any] = {}
    for key, (items, split) in evals.items():
        manifests = [Path(m) for m in items]
        cached = saved_scores((saved or {}).get(key, {}), runs, crop_rows(manifests, split)) if saved else None
        frame = apply_stacker(expert_features(runs, manifests, split=split, cached=cached), names, w, b)
        result = fused_metrics(frame, info["threshold"], metric.bootstrap_n, metric.bootstrap_seed)
        result["drivers_of_fake_crops"] = drivers_summary(frame, names)
        atomic_write_text(out / f"metrics_{key}.json", json.dumps(result, indent=2, default=_json_default))
        headline[key] = _headline(result["video"])
    info["runs"] = {e: os.path.relpath(runs[e], out) for e in names}
    stacker = out / "stacker.json"
    atomic_write_text(stacker, json.dumps(info, indent=2, default=_json_default))
    log.info("[fuse] done in %.1f s", time.perf_counter() - started)
    return stacker, headline


def _json_default(obj: Any) -> Any:
    return float(obj) if hasattr(obj, "__float__") else str(obj)


def _headline(video: dict[str, Any]) -> dict[str, Any]:
    """Video AUC and the rates at the stored threshold from one level of metrics."""
    return {
        "video_auc": video.get("auc"),
        "video_auc_ci95": (video.get("ci95") or {}).get("auc"),
        "video_fpr_at_threshold": video.get("fpr_at_threshold"),
        "video_tpr_at_threshold": video.get("tpr_at_threshold"),
        "n_videos": video.get("n"),
    }
