"""The study's fusion recipes: experts' stacker fitted on validation only, then the families and unseen reals scored.

The stacker itself (logistic or the label-free standardised mean) is evaluation/stacking.py's. Here: the
validation rows of every source the experts train on, and the experts' scores the study already saved for the
families and unseen reals (`scores/<expert>/<part>_scores.csv`, written when the expert ran as a recipe).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from deepdetect.evaluation.scorefile import read_scores
from deepdetect.evaluation.stacking import apply_stacker, expert_features, fit_on_validation, validation_rows
from deepdetect.studies.scoring import Scored


def _saved_scores(runs: dict[str, Path], part: str) -> Callable[[str], pd.DataFrame | None]:
    """A lookup of each expert's saved `<part>_scores.csv` of this study, if any."""

    def lookup(name: str) -> pd.DataFrame | None:
        run_dir = runs[name]
        path = run_dir.parent.parent / "scores" / run_dir.name / f"{part}_scores.csv"
        return read_scores(path) if path.is_file() else None

    return lookup


def fit_and_score(
    runs: dict[str, Path],
    val_manifests: Sequence[Path],
    family_manifests: Sequence[Path],
    unseen_manifests: Sequence[Path],
    exclude_groups: Sequence[str],
    target_fpr: float = 0.05,
    seed: int = 0,
    stacker: str = "logistic",
) -> Scored:
    """Fit the stacker (`logistic` | `mean`) on the experts' validation rows; score the families and unseen reals."""
    experts = list(runs)
    work = next(iter(runs.values())).parent.parent / "fusion_val"
    val = expert_features(runs, validation_rows(val_manifests, work, seed))
    w, b, info = fit_on_validation(val, experts, stacker, target_fpr, seed)
    families = expert_features(runs, family_manifests, exclude_groups, cached=_saved_scores(runs, "families"))
    unseen = expert_features(runs, unseen_manifests, cached=_saved_scores(runs, "unseen"))
    return Scored(
        apply_stacker(families, experts, w, b), apply_stacker(unseen, experts, w, b), info["threshold"], 0.0, info
    )
