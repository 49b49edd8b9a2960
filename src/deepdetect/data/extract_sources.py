"""Extract several named sources with the same detector and crop settings, one output folder each: what the
whole-pipeline runs (the face-swap reference, the leave-one-family-out study) do before they train."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

log = logging.getLogger(__name__)


def extract_sources(
    sources: Mapping[str, tuple[Path, Sequence[str]]],
    out: Path,
    stage_overrides: Sequence[str] = (),
    folder: str = "crops",
) -> dict[str, Path]:
    """Extract each source NAME -> (input folder, its extract overrides) into `out/<folder>/NAME` with `dataset=NAME`;
    returns NAME -> its manifest.csv. An unchanged earlier extraction is kept (extract resumes finished files)."""
    from deepdetect.data.extract import extract
    from deepdetect.utils.config import compose_stage

    manifests: dict[str, Path] = {}
    for i, (name, (path, overrides)) in enumerate(sources.items(), 1):
        crops = out / folder / name
        log.info("[extract %d/%d] %s -> %s", i, len(sources), path, crops)
        base = [f"input={path}", f"output_dir={crops}", f"dataset={name}"]
        extract(compose_stage("extract", [*base, *overrides, *stage_overrides]))
        manifests[name] = crops / "manifest.csv"
    return manifests
