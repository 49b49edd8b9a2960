"""The top of the report: counts, the model and its operating point, and the warnings an analyst must see first.

Model facts come from the run header (`<output>.run.json`: the model card and the operating point) when it is
there, else from what the records carry (model name/version, threshold, `operating_point`). The row order lives
here too (`sort_key`): known-content matches first, then scored files by score, highest first, then decoded files
with no score, then failures; and the plain words put next to a score (`certainty`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from deepdetect.contract.trust import trust_problems, val_reals, val_unit

LOW_TPR = 0.5  # the model's own validation catches fewer fakes than this at the threshold used: say so
ONE_SIDED = 0.9  # this share of the scored files on one side: say so
ONE_SIDED_MIN_FILES = 10  # ...when at least this many files were scored (a 3-file batch is one-sided by chance)
READ_STATUSES = ("ok", "no_face")
STRONG = 0.9  # a frame (or file) score at or above this is "strongly fake"; at or below 1 - STRONG "strongly real"
BORDERLINE = 0.1  # a score this close under the threshold is "borderline"


@dataclass
class Summary:
    """Counts, model facts and warnings for the page's summary."""

    n_files: int
    statuses: Counter[str]
    labels: Counter[str]
    kinds: Counter[str]
    model: dict[str, Any] = field(default_factory=dict)
    operating_point: dict[str, Any] = field(default_factory=dict)
    run: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    known: int = 0  # files that matched the known-content index
    trust: list[str] = field(default_factory=list)  # why this model's labels should not be taken as they stand


def is_known(rec: dict[str, Any]) -> bool:
    """Whether the record matched known content (a `known_match` the index called a match)."""
    match = rec.get("known_match")
    return isinstance(match, dict) and bool(match) and match.get("is_match", True) is not False


def sort_key(rec: dict[str, Any]) -> tuple[int, int, float]:
    """Known-content matches first; then scored files (highest score first), decoded files without a score,
    failures."""
    first = 0 if is_known(rec) else 1
    score = rec.get("score")
    if score is not None:
        return (first, 0, -float(score))
    return (first, 1, 0.0) if rec.get("status") in READ_STATUSES else (first, 2, 0.0)


def frame_maxima(rec: dict[str, Any]) -> list[float]:
    """Each scored frame's highest face score (a frame holding several faces counts once)."""
    per: dict[Any, float] = {}
    for face in rec.get("faces") or []:
        if isinstance(face, dict) and face.get("score") is not None:
            key = face.get("frame_index")
            per[key] = max(per.get(key, 0.0), float(face["score"]))
    return list(per.values())


def certainty(rec: dict[str, Any]) -> str:
    """The score in plain words, e.g. "likely fake — 3 of 32 frames strongly fake" ("" without a score); a fused
    model's flagged file also names the expert that drove its score."""
    score, thr = rec.get("score"), rec.get("threshold")
    if score is None:
        return ""
    thr = 0.5 if thr is None else float(thr)
    if score >= thr:
        words = "very likely fake" if score >= max(STRONG, thr) else "likely fake"
    elif score >= thr - BORDERLINE:
        words = "borderline: just under the threshold"
    else:
        words = "very likely real" if score <= 1 - STRONG else "likely real"
    frames = frame_maxima(rec)
    if rec.get("kind") == "video" and len(frames) > 1:
        strong = sum(f >= max(STRONG, thr) for f in frames)
        words += f" — {strong} of {len(frames)} frames strongly fake"
    driven = rec.get("driven_by")
    if isinstance(driven, str) and driven and score >= thr:  # a fused model: the expert that argued most for fake
        words += f"; driven by the {driven[:64]} expert"
    return words


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def model_facts(run: dict[str, Any] | None, records: list[dict[str, Any]]) -> dict[str, Any]:
    """Name, version, training data, calibration (threshold, rule, validation FPR/TPR) of the model that scored."""
    card = _dict((run or {}).get("model"))
    spec = _dict(card.get("model"))
    first = next((r for r in records if r.get("model_name")), {})
    calibration = _dict(card.get("calibration"))
    data = card.get("training_data") or card.get("data")
    return {
        "name": card.get("name") or spec.get("name") or first.get("model_name"),
        "version": card.get("version") or card.get("model_version") or first.get("model_version"),
        "training_data": data if isinstance(data, dict | str) else None,
        "threshold": _num(calibration.get("threshold")),
        "threshold_rule": calibration.get("threshold_rule"),
        "target_fpr": _num(calibration.get("target_fpr")),
        "val_fpr": _num(calibration.get("val_fpr")),
        "val_tpr": _num(calibration.get("val_tpr")),
        "calibrated": bool(calibration) and calibration.get("threshold_rule") != "default 0.5 (uncalibrated)",
        "calibration_failed": calibration.get("failed") if isinstance(calibration.get("failed"), str) else None,
        "n_val_real": val_reals(calibration, data if isinstance(data, dict) else None),
        "val_unit": val_unit(calibration),
        "has_card": bool(card),
    }


def operating_point(run: dict[str, Any] | None, records: list[dict[str, Any]], model: dict[str, Any]) -> dict[str, Any]:
    """The threshold used and what it had on validation: run header, else the records, else the model's own."""
    op: dict[str, Any] = {}
    for source in [(run or {}).get("operating_point"), *(r.get("operating_point") for r in records[:1])]:
        if isinstance(source, dict):
            op = {k: source.get(k) for k in ("threshold", "source", "target_fpr", "val_fpr", "val_tpr")}
            break
    thresholds = sorted({float(r["threshold"]) for r in records if _num(r.get("threshold")) is not None})
    if _num(op.get("threshold")) is None and thresholds:
        op["threshold"] = thresholds[0]
    if _num(op.get("threshold")) is None:
        op["threshold"] = model.get("threshold")
    if not op.get("source"):
        op["source"] = "model calibration" if op.get("threshold") == model.get("threshold") else "as recorded"
    # the model's own validation rates apply when the threshold is the model's
    if op.get("val_tpr") is None and op.get("threshold") is not None and op.get("threshold") == model.get("threshold"):
        op["val_tpr"], op["val_fpr"] = model.get("val_tpr"), model.get("val_fpr")
        op.setdefault("target_fpr", model.get("target_fpr"))
    op["thresholds_in_records"] = thresholds
    return op


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%" if x >= 0.01 or x == 0 else f"{100 * x:.1f}%"


def summarise(records: list[dict[str, Any]], run: dict[str, Any] | None, read_warnings: Sequence[str] = ()) -> Summary:
    """Counts, model facts, the operating point and plain warnings for a batch of records."""
    statuses = Counter(str(r.get("status")) for r in records)
    labels = Counter(str(r["label"]) for r in records if r.get("label"))
    kinds = Counter(str(r.get("kind") or "unknown") for r in records)
    model = model_facts(run, records)
    op = operating_point(run, records, model)
    out = Summary(len(records), statuses, labels, kinds, model, op, dict(run or {}))
    out.warnings.extend(read_warnings)
    out.known = sum(is_known(r) for r in records)
    out.trust = trust_problems(
        threshold=_num(op.get("threshold")),
        val_fpr=_num(op.get("val_fpr")),
        target_fpr=_num(op.get("target_fpr")),
        n_val_real=model.get("n_val_real"),
        calibration_failed=model.get("calibration_failed"),
        unit=str(model.get("val_unit") or "real crops"),
    )
    if out.known:
        out.notes.insert(
            0,
            f"{out.known} file(s) match known content in the hash index: the strongest evidence in this report; "
            "they are listed first, with the matched entry's label and source.",
        )

    tpr, thr = _num(op.get("val_tpr")), _num(op.get("threshold"))
    thr_text = f"{thr:.3g}" if thr is not None else "its threshold"
    if tpr is not None and tpr < LOW_TPR:
        out.warnings.append(
            f"This model caught only {_pct(tpr)} of the fakes in its own validation at threshold {thr_text} "
            f"(validation TPR {tpr:.3f}). A 'real' label from it is weak evidence: do not clear a file on it."
        )
    elif tpr is None and labels:
        out.warnings.append(
            "Neither the records nor a run header say how many fakes this model catches at the threshold used "
            "(no validation TPR): treat 'real' labels with caution."
        )
    scored = sum(labels.values())
    if scored >= ONE_SIDED_MIN_FILES:
        side, n = labels.most_common(1)[0]
        if n / scored >= ONE_SIDED:
            out.warnings.append(
                f"{_pct(n / scored)} of the {scored} scored files are labelled '{side}'. A batch this one-sided "
                "often means the threshold or the model does not suit these files (a kind of fake it never saw, "
                "another quality or source): look at the scores and the per-frame strips, not only the labels."
            )
    if model["has_card"] and not model["calibrated"]:
        out.warnings.append("The model is not calibrated: its threshold is the default 0.5, not one chosen on data.")
    if len(op["thresholds_in_records"]) > 1:
        out.warnings.append(
            "The records use more than one threshold ("
            + ", ".join(f"{t:.3g}" for t in op["thresholds_in_records"][:5])
            + "): they come from different runs or settings; labels are not comparable across them."
        )
    versions = {(r.get("model_name"), r.get("model_version")) for r in records if r.get("model_name")}
    if len(versions) > 1:
        out.warnings.append(f"The records come from {len(versions)} different models or model versions.")
    failed = sum(n for s, n in statuses.items() if s not in (*READ_STATUSES, "skipped"))
    media = len(records) - statuses.get("skipped", 0)  # files found in folders that are not media are not failures
    if media and failed / media >= 0.5:
        out.warnings.append(f"{failed} of {media} files could not be read or scored (see their status).")
    if not records:
        out.warnings.append("No record could be read from the records file.")
    no_face = statuses.get("no_face", 0)
    if no_face:
        out.notes.append(
            f"{no_face} file(s) had no usable face: they have no score (a face-swap detector cannot say anything "
            "about them), not a 'real' verdict."
        )
    return out
