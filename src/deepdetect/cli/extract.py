"""`deepdetect-extract`: Hydra entry point for deepdetect.data.extract.extract."""

from __future__ import annotations

import logging
from typing import Any

from omegaconf import DictConfig

from deepdetect.cli._hydra import hydra_main
from deepdetect.utils.terminal import shown

log = logging.getLogger(__name__)


def extract_task(cfg: DictConfig) -> dict[str, Any]:
    """Run extraction; user mistakes exit 2 with a message, not a traceback."""
    from deepdetect.data.extract import DiskFullError, extract
    from deepdetect.data.layouts import LayoutError

    try:
        result = extract(cfg)
    except (LayoutError, ValueError) as exc:
        log.error("%s", shown(exc))
        raise SystemExit(2) from exc
    except DiskFullError as exc:  # the finished sources are kept; rerun the same command to resume
        log.error("%s; the sources finished so far are kept, extract.json says failed", shown(exc))
        raise SystemExit(1) from None
    summary = result.to_dict()
    where = shown(result.manifest_path or "rank 0 merges the manifest")
    print(
        f"{result.n_crops} crops, {result.n_failures} failures from {result.n_sources} sources "
        f"({result.n_skipped} already done) -> {where}"
    )
    return summary


main = hydra_main("extract", extract_task)
