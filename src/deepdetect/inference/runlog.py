"""What a predict run says about itself: its counts (`PredictSummary`) and `<output>.run.json`, the run header
written beside the output when the run starts and again when it ends."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepdetect.inference.predictor import Predictor
from deepdetect.inference.settings import OperatingPointChoice, PredictSettings
from deepdetect.inference.stages.record import RunInfo, utc_now
from deepdetect.utils.io import atomic_write_text

log = logging.getLogger(__name__)


@dataclass
class PredictSummary:
    """What a run did: status and label counts over every record in the output (kept ones included)."""

    run_id: str
    operating_point: OperatingPointChoice
    statuses: Counter[str] = field(default_factory=Counter)
    labels: Counter[str] = field(default_factory=Counter)
    scored: int = 0
    resumed: int = 0
    dropped_bytes: int = 0
    explained: int = 0
    known: int = 0  # records that matched the known-content index
    report: Path | None = None
    interrupted: str | None = None  # the signal that stopped the run early (SIGINT, SIGTERM), else None
    failed: str | None = None  # why the run stopped early for itself (records could not be written), else None
    trust: str | None = None  # why the model's labels should not be taken at face value (settings.model_trust_warning)

    def count(self, rec: dict[str, Any]) -> None:
        """Add one record to the counts."""
        self.statuses[str(rec.get("status"))] += 1
        if rec.get("label"):
            self.labels[str(rec["label"])] += 1
        if isinstance(rec.get("known_match"), dict):
            self.known += 1


def run_header_path(output: str | os.PathLike[str]) -> Path:
    """`<output>.run.json`: the run header written beside an output."""
    return Path(os.fspath(output) + ".run.json")


def write_header(target: Path, header: dict[str, Any]) -> None:
    """Write a run header atomically."""
    atomic_write_text(target, json.dumps(header, indent=2, default=str, ensure_ascii=False) + "\n")


def start_header(
    run: RunInfo,
    predictor: Predictor,
    settings: PredictSettings,
    output: str | os.PathLike[str],
    argv: Sequence[str] | None,
    previous: Path | None,
) -> dict[str, Any]:
    """The header of a run that starts now; `previous` (resume): the output's earlier header, kept inside."""
    header: dict[str, Any] = {
        "format": "deepdetect-predict-run/1",
        "run_id": run.run_id,
        "status": "running",
        "started_at": utc_now(),
        "finished_at": None,
        "tool_version": run.tool_version,
        "argv": list(argv) if argv is not None else list(sys.argv),
        "cwd": os.getcwd(),
        "output": os.path.abspath(output),
        "settings": settings.with_paths_absolute().to_dict(),
        "model_path": str(Path(predictor.path).absolute()) if hasattr(predictor, "path") else None,
        "model_backend": predictor.kind,
        "model": predictor.contract.to_dict(),
        "operating_point": run.operating_point.to_dict(),
        "previous_runs": [],
    }
    if previous is not None and previous.is_file():  # resume: keep what the earlier runs' headers said
        try:
            old = json.loads(previous.read_text(encoding="utf-8"))
            earlier = old.pop("previous_runs", [])
            header["previous_runs"] = [*earlier, old]
        except (OSError, ValueError, AttributeError):
            log.warning("resume: could not read the earlier run header %s", previous)
    return header


def finish_header(header: dict[str, Any], summary: PredictSummary) -> None:
    """Mark a header finished now (or `interrupted`, when a signal stopped the run, or `failed`, with `error`, when
    it could not go on), with the run's counts."""
    status = "failed" if summary.failed else "interrupted" if summary.interrupted else "finished"
    if summary.failed:
        header["error"] = summary.failed
    header.update(
        finished_at=utc_now(),
        status=status,
        counts={
            "scored": summary.scored,
            "resumed": summary.resumed,
            "explained": summary.explained,
            "status": dict(summary.statuses),
            "label": dict(summary.labels),
            "known_content": summary.known,
        },
    )
