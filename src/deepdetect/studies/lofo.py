"""Leave one family out: does a recipe catch manipulation families it never trained on?

For each recipe of `configs/lofo.yaml`: extract every source once (same detector, margin, crop size, dense
landmarks), train the recipe, and score every held-out family's fakes against its own reals and against the unseen
real `photos/` and `videos/`. A recipe that never trains on the families (SBI: real faces only; the face-swap
reference: other face-swap sources) is trained once and every family is unseen to it. A recipe with
`families: true` also trains on the families: once per held-out family, without that family's rows, and the held-out
family is scored without the groups that also occur in the families it trained on (a group ties a real clip to
every fake made from it, across families). A fusion recipe stacks its experts' calibrated scores with a stacker
(logistic, or the label-free standardised mean) fitted on the training sources' validation split only
(`fusion.py`, evaluation/stacking.py); `stacker: video_mean` fuses per video instead, so that the temporal expert's
clip scores join the frame experts' (`video_fusion.py`, evaluation/video_fusion.py). A `temporal` recipe trains the
temporal expert on real clips of consecutive frames (the `clips:` extraction) and scores one clip per video
(`temporal.py`).

Rows go to `families.json` (one per held-out family × recipe); `render_markdown` turns them into the RESULTS section.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig

from deepdetect.evaluation.stacking import score_rows
from deepdetect.studies.families import FamilyRow, RowMeta, family_row
from deepdetect.studies.scoring import Scored, write_study_scores

log = logging.getLogger(__name__)

ROLES = ("train", "unseen", "families")


class LofoError(ValueError):
    """Raised when the data, a source or a recipe of the study is missing or inconsistent."""


@dataclass
class StudyData:
    """The manifests the study works on, by source name, and their roles."""

    manifests: dict[str, Path]
    roles: dict[str, str]

    def of_role(self, role: str) -> list[Path]:
        """Manifests of the sources with `role`."""
        return [m for name, m in self.manifests.items() if self.roles[name] == role]


def source_roots(cfg: DictConfig) -> dict[str, Path]:
    """Each configured source's input folder under `data_root`; raises LofoError for missing ones."""
    from deepdetect.utils.devdata import source_folders

    out = source_folders(cfg.get("data_root"), cfg.sources.items(), ROLES, LofoError)
    if not any(str(s.role) == "families" for s in cfg.sources.values()):
        raise LofoError("the study needs a source with role: families (the pairs.csv layout)")
    return out


def extract_sources(
    cfg: DictConfig, out: Path, folder: str = "crops", only: Sequence[str] | None = None, extra: Sequence[str] = ()
) -> StudyData:
    """Extract every source (or the `only` ones) into `out/folder/<source>`, `extra` overrides last (an unchanged
    earlier extraction is kept: extract resumes finished files)."""
    from deepdetect.data.extract_sources import extract_sources as extract_each

    roots = source_roots(cfg)
    if only is not None:
        unknown = sorted(set(only) - set(roots))
        if unknown:
            raise LofoError(f"unknown sources {unknown} to extract into {folder}; configs/lofo.yaml has {list(roots)}")
        roots = {name: path for name, path in roots.items() if name in set(only)}
    specs = {name: (path, [*cfg.extract, *cfg.sources[name].extract, *extra]) for name, path in roots.items()}
    manifests = extract_each(specs, out, cfg.stage_overrides, folder)
    return StudyData(manifests, {name: str(cfg.sources[name].role) for name in roots})


def held_out_families(data: StudyData, wanted: Sequence[str] | None) -> list[str]:
    """The family names (the families manifests' `source` values), or the wanted subset (unknown names refused)."""
    from deepdetect.data.manifest import read_manifests

    frame = read_manifests([str(m) for m in data.of_role("families")])
    found = sorted(frame["source"].astype(str).unique())
    if not wanted:
        return found
    unknown = sorted(set(wanted) - set(found))
    if unknown:
        raise LofoError(f"unknown families {unknown}; the families manifest has {found}")
    return [f for f in found if f in set(wanted)]


def train_recipe(cfg: DictConfig, name: str, manifests: Sequence[Path], run_dir: Path, extra: Sequence[str]) -> float:
    """Train one recipe run (kept when `reuse` and its model exists); returns the training seconds."""
    from deepdetect.training.train import train
    from deepdetect.utils.config import compose_stage

    recipe = cfg.recipes[name]
    done = run_dir / "model.safetensors"
    timing = run_dir / "lofo_seconds.json"
    if cfg.reuse and done.is_file() and timing.is_file():
        log.info("[train %s] reusing %s", name, run_dir)
        return float(json.loads(timing.read_text())["seconds"])
    start = time.monotonic()
    overrides = [
        f"data.manifest=[{','.join(str(m) for m in manifests)}]",
        f"output_dir={run_dir}",
        "overwrite=true",
        *recipe.train,
        *extra,
        *cfg.stage_overrides,
    ]
    log.info("[train %s] %s", name, run_dir)
    train(compose_stage("train", overrides))
    seconds = time.monotonic() - start
    timing.write_text(json.dumps({"seconds": seconds}))
    return seconds


def rows_for(
    recipe: str,
    scored: Scored,
    families: Sequence[str],
    command: str,
    boot_n: int,
    drop_groups: dict[str, set[str]] | None = None,
) -> list[FamilyRow]:
    """One table row per held-out family from a recipe's scores."""
    rows = []
    frame = scored.families
    for fam in families:
        part = frame[frame["source"].astype(str) == fam]
        if drop_groups and drop_groups.get(fam):
            part = part[~part["group"].isin(drop_groups[fam])]
        if len(part) == 0:
            log.warning("recipe %s: no crops of family %s to score", recipe, fam)
            continue
        reals_all = frame[frame["label"] == "real"]
        rows.append(
            family_row(
                fam,
                part,
                scored.unseen,
                scored.threshold,
                RowMeta(recipe, scored.seconds, f"{command} 'families=[{fam}]'", boot_n=boot_n),
                all_family_reals=reals_all,
            )
        )
    return rows


def _reals_only(data: StudyData, source: str, out: Path) -> Path:
    """The real rows of `source` alone, as a manifest under `out/reals_only/` (data.manifest.write_reals)."""
    from deepdetect.data.manifest import write_reals

    return write_reals(data.manifests[source], out / "reals_only" / source / "manifest.csv")


def recipe_manifests(cfg: DictConfig, name: str, data: StudyData, out: Path) -> list[Path]:
    """A recipe's training manifests: its `sources`, plus only the reals of its `reals_from` sources (an expert
    whose fakes come from one collection learns its reals' collection otherwise)."""
    recipe = cfg.recipes[name]
    manifests = [data.manifests[s] for s in recipe.sources]
    manifests += [_reals_only(data, str(source), out) for source in recipe.get("reals_from") or []]
    return manifests


def validation_sources(
    cfg: DictConfig, experts: Sequence[str], data: StudyData, out: Path, calibration: Sequence[str] = ()
) -> list[Path]:
    """Every source an expert trains on (whole manifests: their val splits fit the stacker), then the reals alone of
    each `calibration` source no expert trains on (a fusion recipe's `calibration_from`, written under `out`): more
    and other real media to standardise the experts and set the threshold on, never trained on."""
    names = {s for e in experts for key in ("sources", "reals_from") for s in cfg.recipes[e].get(key) or []}
    reals = [_reals_only(data, str(s), out) for s in calibration if s not in names]
    return [*sorted(data.manifests[s] for s in names), *reals]


def run_single(cfg: DictConfig, name: str, data: StudyData, out: Path, families: Sequence[str]) -> list[FamilyRow]:
    """A recipe that never trains on the families: one run, every family unseen."""
    train_sources = recipe_manifests(cfg, name, data, out)
    run_dir = out / "runs" / name
    seconds = train_recipe(cfg, name, train_sources, run_dir, [])
    start = time.monotonic()
    fam_rows, threshold = score_rows(run_dir, data.of_role("families"), cfg.exclude_groups)
    unseen_rows, _ = score_rows(run_dir, data.of_role("unseen"), [])
    scored = Scored(fam_rows, unseen_rows, threshold, seconds + time.monotonic() - start)
    _save_scores(out / "scores" / name, scored)
    return rows_for(name, scored, families, f"deepdetect-lofo 'recipes_to_run=[{name}]'", int(cfg.bootstrap_n))


def run_with_families(
    cfg: DictConfig, name: str, data: StudyData, out: Path, families: Sequence[str]
) -> list[FamilyRow]:
    """A recipe that also trains on the families: one run per held-out family, without that family's rows."""
    from deepdetect.data.manifest import read_manifests

    recipe = cfg.recipes[name]
    fam_frame = read_manifests([str(m) for m in data.of_role("families")])
    rows: list[FamilyRow] = []
    for fam in families:
        run_dir = out / "runs" / f"{name}_without_{fam}"
        manifests = [*(data.manifests[s] for s in recipe.sources), *data.of_role("families")]
        seconds = train_recipe(cfg, name, manifests, run_dir, [f"data.holdout_source={fam}"])
        start = time.monotonic()
        fam_rows, threshold = score_rows(run_dir, data.of_role("families"), cfg.exclude_groups)
        unseen_rows, _ = score_rows(run_dir, data.of_role("unseen"), [])
        scored = Scored(fam_rows, unseen_rows, threshold, seconds + time.monotonic() - start)
        trained_groups = set(fam_frame.loc[fam_frame["source"] != fam, "group"].astype(str))
        shared = trained_groups & set(fam_frame.loc[fam_frame["source"] == fam, "group"].astype(str))
        if shared:
            log.info("family %s: %d groups also in its training families are not scored", fam, len(shared))
        rows += rows_for(
            name, scored, [fam], f"deepdetect-lofo 'recipes_to_run=[{name}]'", int(cfg.bootstrap_n), {fam: shared}
        )
    return rows


def run_fusion(cfg: DictConfig, name: str, data: StudyData, out: Path, families: Sequence[str]) -> list[FamilyRow]:
    """Experts (recipes trained without the families) fused by a stacker fitted on validation data only."""
    from deepdetect.evaluation.stacking import drivers_summary
    from deepdetect.studies.fusion import fit_and_score

    recipe = cfg.recipes[name]
    experts = [str(e) for e in recipe.experts]
    for expert in experts:
        _check_expert(cfg, name, expert)
        if "temporal" in cfg.recipes[expert]:
            raise LofoError(f"fusion {name}: the temporal expert {expert} scores videos, not crops: use video_mean")
        train_recipe(cfg, expert, recipe_manifests(cfg, expert, data, out), out / "runs" / expert, [])
    start = time.monotonic()
    val_manifests = validation_sources(cfg, experts, data, out, [str(c) for c in recipe.get("calibration_from") or []])
    scored = fit_and_score(
        {e: out / "runs" / e for e in experts},
        val_manifests,
        data.of_role("families"),
        data.of_role("unseen"),
        cfg.exclude_groups,
        target_fpr=float(recipe.get("target_fpr", 0.05)),
        seed=int(cfg.seed),
        stacker=str(recipe.get("stacker", "logistic")),
    )
    train_seconds = sum(json.loads((out / "runs" / e / "lofo_seconds.json").read_text())["seconds"] for e in experts)
    scored.seconds = train_seconds + time.monotonic() - start
    scored.experts["drivers_of_fake_crops"] = drivers_summary(scored.families, experts)  # per family
    _save_scores(out / "scores" / name, scored)
    # the experts' run folders relative to the stacker file: `deepdetect-export fusion=.../stacker.json` finds them
    scored.experts["runs"] = {e: os.path.relpath(out / "runs" / e, out / "scores" / name) for e in experts}
    (out / "scores" / name / "stacker.json").write_text(json.dumps(scored.experts, indent=2))
    return rows_for(name, scored, families, f"deepdetect-lofo 'recipes_to_run=[{name}]'", int(cfg.bootstrap_n))


def _check_expert(cfg: DictConfig, name: str, expert: str) -> None:
    if expert not in cfg.recipes:
        raise LofoError(f"fusion {name}: unknown expert {expert}; configs/lofo.yaml defines {list(cfg.recipes)}")
    if cfg.recipes[expert].get("families", False) or "experts" in cfg.recipes[expert]:
        raise LofoError(f"fusion {name}: expert {expert} must be a single recipe trained without the families")


def run_video_fusion(
    cfg: DictConfig, name: str, data: StudyData, clips: StudyData | None, out: Path, families: Sequence[str]
) -> list[FamilyRow]:
    """Frame experts and the temporal expert fused per video (`stacker: video_mean`) from their saved scores; an
    expert whose scores are not saved yet runs as a recipe first (its trained run is reused)."""
    from dataclasses import replace

    from deepdetect.evaluation.scorefile import read_scores
    from deepdetect.studies.video_fusion import (
        NOTE,
        ExpertScores,
        fit_and_score,
        frame_expert_val,
        save_fused,
        temporal_expert_val,
    )

    recipe = cfg.recipes[name]
    experts: list[ExpertScores] = []
    for expert in [str(e) for e in recipe.experts]:
        _check_expert(cfg, name, expert)
        spec, scores = cfg.recipes[expert], out / "scores" / expert
        temporal = "temporal" in spec
        if temporal and clips is None:
            raise LofoError(f"fusion {name}: the temporal expert {expert} needs the clips: extraction")
        if not all((scores / f"{part}_scores.csv").is_file() for part in ("families", "unseen")):
            log.info("fusion %s: %s has no saved scores in %s; running it as a recipe", name, expert, scores)
            if temporal and clips is not None:
                run_temporal(cfg, expert, clips, out, families)
            else:
                run_single(cfg, expert, data, out, families)
        run_dir = out / "runs" / expert
        if temporal and clips is not None:
            val = temporal_expert_val(run_dir, [clips.manifests[s] for s in spec.sources])
        else:
            val = frame_expert_val(run_dir)
        parts = {part: read_scores(scores / f"{part}_scores.csv") for part in ("families", "unseen")}
        experts.append(ExpertScores(expert, parts["families"], parts["unseen"], val))
    start = time.monotonic()
    try:
        scored = fit_and_score(experts, cfg.exclude_groups, float(recipe.get("target_fpr", 0.05)))
    except ValueError as err:
        raise LofoError(f"fusion {name}: {err}") from err
    timings = [out / "runs" / e.name / "lofo_seconds.json" for e in experts]
    scored.seconds = sum(json.loads(t.read_text())["seconds"] for t in timings) + time.monotonic() - start
    folder = out / "scores" / name
    _save_scores(folder, scored)
    save_fused(folder, scored)
    (folder / "fusion.json").write_text(json.dumps(scored.experts, indent=2))
    rows = rows_for(name, scored, families, f"deepdetect-lofo 'recipes_to_run=[{name}]'", int(cfg.bootstrap_n))
    return [replace(r, frame_auc=None, frame_auc_ci95=[None, None], note=NOTE) for r in rows]


def extract_clips(cfg: DictConfig, out: Path, frames: int | None = None) -> StudyData:
    """The `clips:` sources extracted again as consecutive-frame clips into `out/clips/<source>`; `frames=N`: clips of
    N frames instead, into `out/clips<N>/<source>`."""
    clips = cfg.get("clips") or {}
    names = [str(s) for s in clips.get("sources") or []]
    extra = list(clips.get("extract") or [])
    if frames is None:
        return extract_sources(cfg, out, "clips", names, extra)
    return extract_sources(cfg, out, f"clips{frames}", names, [*extra, f"frames_per_video={frames}"])


def clip_frames(cfg: DictConfig, name: str) -> int | None:
    """The clip length a recipe reads (`clip_frames:` of a temporal recipe, or of a fusion's temporal expert; None:
    the `clips:` extraction's own)."""
    recipe = cfg.recipes[name]
    names = [name] if "temporal" in recipe else [str(e) for e in recipe.get("experts") or []]
    wanted = {cfg.recipes[n].get("clip_frames") for n in names if n in cfg.recipes and "temporal" in cfg.recipes[n]}
    if len(wanted) > 1:
        lengths = sorted(map(str, wanted))
        raise LofoError(f"recipe {name}: its temporal experts read clips of different lengths {lengths}")
    frames = next(iter(wanted), None)
    if frames is not None and (not isinstance(frames, int) or frames < 2):
        raise LofoError(f"recipe {name}: clip_frames must be an integer >= 2, got {frames!r}")
    return frames


def _frames_per_video(overrides: Sequence[str]) -> int | None:
    """The last `frames_per_video=N` of extract overrides (None when absent or null)."""
    values = [str(o).split("=", 1)[1] for o in overrides if str(o).startswith("frames_per_video=")]
    return int(values[-1]) if values and values[-1].isdigit() else None


def run_temporal(cfg: DictConfig, name: str, clips: StudyData, out: Path, families: Sequence[str]) -> list[FamilyRow]:
    """The temporal expert: trained on its sources' real clips only, every family unseen; one clip per video."""
    from dataclasses import replace

    from deepdetect.studies.temporal import fit_and_score, note, unscored_families

    recipe = cfg.recipes[name]
    missing = [s for s in recipe.sources if s not in clips.manifests]
    if missing:
        raise LofoError(f"recipe {name}: sources {missing} are not in clips.sources, so they have no clips")
    scored = fit_and_score(
        recipe.temporal,
        [clips.manifests[s] for s in recipe.sources],
        clips.of_role("families"),
        clips.of_role("unseen"),
        cfg.exclude_groups,
        out / "runs" / name,
        bool(cfg.reuse),
    )
    _save_scores(out / "scores" / name, scored)
    (out / "scores" / name / "skipped.json").write_text(json.dumps(scored.experts["skipped"], indent=2))
    command = f"deepdetect-lofo 'recipes_to_run=[{name}]'"
    rows = rows_for(name, scored, families, command, int(cfg.bootstrap_n))
    window = recipe.temporal.get("window") if recipe.temporal else None
    frames = clip_frames(cfg, name) or _frames_per_video(list((cfg.get("clips") or {}).get("extract") or []))
    row_note = note(frames, window)
    rows = [replace(r, frame_auc=None, frame_auc_ci95=[None, None], note=row_note) for r in rows]
    unseen = scored.unseen
    fpr = float((unseen["prob"] >= scored.threshold).mean()) if len(unseen) else None
    for fam in unscored_families(families, scored.families):
        rows.append(
            FamilyRow(
                family=fam,
                recipe=name,
                video_auc=None,
                video_auc_ci95=[None, None],
                frame_auc=None,
                frame_auc_ci95=[None, None],
                fpr_unseen_real=fpr,
                tpr_at_threshold=None,
                seconds=round(scored.seconds, 1),
                command=f"{command} 'families=[{fam}]'",
                n_unseen_real_videos=len(unseen),
                threshold=scored.threshold,
                note=f"{row_note}; no video of this family gave a clip",
            )
        )
    return sorted(rows, key=lambda r: r.family)


def _save_scores(folder: Path, scored: Scored) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for part, frame in (("families", scored.families), ("unseen", scored.unseen)):
        write_study_scores(frame, folder / f"{part}_scores.csv")


def run_lofo(cfg: DictConfig) -> list[dict[str, Any]]:
    """Run the study's recipes; writes `families.json` (output_dir, and `results_json` when set); returns the rows."""
    out = Path(str(cfg.output_dir)).resolve()
    unknown = [r for r in cfg.recipes_to_run if r not in cfg.recipes]
    if unknown:
        raise LofoError(f"unknown recipes {unknown}; configs/lofo.yaml defines {list(cfg.recipes)}")
    temporal = [name for name in cfg.recipes_to_run if "temporal" in cfg.recipes[name]]
    clip_sets = {  # each clip length the recipes read, extracted once
        frames: extract_clips(cfg, out, frames)
        for frames in dict.fromkeys(clip_frames(cfg, n) for n in cfg.recipes_to_run if _reads_clips(cfg, n))
    }
    # the frame crops are extracted only when a recipe reads them (a temporal recipe reads its clips alone)
    if len(temporal) < len(cfg.recipes_to_run) or not clip_sets:
        data = extract_sources(cfg, out)
    else:
        data = next(iter(clip_sets.values()))
    families = held_out_families(data, list(cfg.families) if cfg.families else None)
    rows: list[FamilyRow] = []
    for name in cfg.recipes_to_run:
        recipe = cfg.recipes[name]
        clips = clip_sets.get(clip_frames(cfg, name)) if _reads_clips(cfg, name) else None
        if "temporal" in recipe and clips is not None:
            rows += run_temporal(cfg, name, clips, out, families)
        elif "experts" in recipe and recipe.get("stacker") == "video_mean":
            rows += run_video_fusion(cfg, name, data, clips, out, families)
        elif "experts" in recipe:
            rows += run_fusion(cfg, name, data, out, families)
        elif recipe.get("families", False):
            rows += run_with_families(cfg, name, data, out, families)
        else:
            rows += run_single(cfg, name, data, out, families)
    result = [r.to_dict() for r in rows]
    targets = [out / "families.json"]
    if cfg.get("results_json"):
        targets.append(Path(str(cfg.results_json)))
    for target in targets:
        merged = merge_rows(_read_rows(target), result)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(merged, indent=2) + "\n")
        log.info("wrote %s (%d rows)", target, len(merged))
    return result


def _reads_clips(cfg: DictConfig, name: str) -> bool:
    """Whether a recipe reads the clips: a temporal recipe, or a fusion with a temporal expert."""
    recipe = cfg.recipes[name]
    experts = [str(e) for e in recipe.get("experts") or []]
    return "temporal" in recipe or any(e in cfg.recipes and "temporal" in cfg.recipes[e] for e in experts)


def _read_rows(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    loaded = json.loads(path.read_text())
    return [r for r in loaded if isinstance(r, dict)] if isinstance(loaded, list) else []


def merge_rows(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows of `old` not replaced by a (family, recipe) of `new`, then `new`; sorted by recipe then family."""
    keys = {(r["family"], r["recipe"]) for r in new}
    kept = [r for r in old if (r.get("family"), r.get("recipe")) not in keys]
    return sorted([*kept, *new], key=lambda r: (str(r["recipe"]), str(r["family"])))


def _fmt(v: Any, digits: int = 3) -> str:
    return "–" if v is None else f"{float(v):.{digits}f}"


def _ci(ci: Any) -> str:
    if not isinstance(ci, list) or len(ci) != 2 or ci[0] is None or ci[1] is None:
        return ""
    return f" [{float(ci[0]):.2f}, {float(ci[1]):.2f}]"


def render_markdown(rows: list[dict[str, Any]]) -> str:
    """The leave-one-family-out table (and a per-recipe mean) as Markdown, from families.json rows."""
    lines = [
        "| recipe | held-out family | fake / real videos | video AUC [95% CI] | frame AUC [95% CI] | "
        "video AUC vs all reals | detected at threshold | unseen reals flagged | seconds |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| `{r['recipe']}` | {r['family']} | {r.get('n_fake_videos', '')} / {r.get('n_real_videos', '')} | "
            f"{_fmt(r['video_auc'])}{_ci(r['video_auc_ci95'])} | {_fmt(r['frame_auc'])}{_ci(r['frame_auc_ci95'])} | "
            f"{_fmt(r.get('video_auc_all_reals'))} | {_fmt(r['tpr_at_threshold'])} | "
            f"{_fmt(r['fpr_unseen_real'])} | {_fmt(r['seconds'], 0)} |"
        )
    notes = list(dict.fromkeys((str(r["recipe"]), str(r["note"])) for r in rows if r.get("note")))
    if notes:
        lines += ["", *(f"- `{recipe}`: {note}." for recipe, note in notes)]
    lines += [
        "",
        "| recipe | mean video AUC | min video AUC | families ≥ 0.80 | mean detected | unseen reals flagged |",
    ]
    lines.append("|---|---|---|---|---|---|")
    for recipe in sorted({str(r["recipe"]) for r in rows}):
        part = [r for r in rows if r["recipe"] == recipe]
        aucs = [float(r["video_auc"]) for r in part if r["video_auc"] is not None]
        tprs = [float(r["tpr_at_threshold"]) for r in part if r["tpr_at_threshold"] is not None]
        fprs = [float(r["fpr_unseen_real"]) for r in part if r["fpr_unseen_real"] is not None]
        lines.append(
            f"| `{recipe}` | {_fmt(np.mean(aucs) if aucs else None)} | {_fmt(min(aucs) if aucs else None)} | "
            f"{sum(a >= 0.8 for a in aucs)} of {len(aucs)} | {_fmt(np.mean(tprs) if tprs else None)} | "
            f"{_fmt(max(fprs) if fprs else None)} |"
        )
    return "\n".join(lines) + "\n"


BEGIN, END = "<!-- families table: begin -->", "<!-- families table: end -->"


def write_results_section(results_md: Path, rows: list[dict[str, Any]]) -> None:
    """Replace the generated table between the markers of `results_md` (appended with the markers when absent)."""
    text = results_md.read_text() if results_md.is_file() else ""
    block = f"{BEGIN}\n{render_markdown(rows)}{END}"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    results_md.write_text(text)
