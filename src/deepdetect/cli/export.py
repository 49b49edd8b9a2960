"""`deepdetect-export`: Hydra entry point for deepdetect.export.pipeline.export."""

from __future__ import annotations

import logging
from typing import Any

from omegaconf import DictConfig

from deepdetect.cli._hydra import hydra_main
from deepdetect.utils.terminal import shown

log = logging.getLogger(__name__)


def export_task(cfg: DictConfig) -> dict[str, Any]:
    """Run the export; user mistakes exit 2 and a failed parity check exits 1, with a message, not a traceback."""
    from deepdetect.export.pipeline import ExportError, ExportUsageError, export
    from deepdetect.models.detector import ModelBuildError

    try:
        return export(cfg)
    except (ModelBuildError, ExportUsageError) as exc:
        log.error("%s", shown(exc))
        raise SystemExit(2) from exc
    except ExportError as exc:
        log.error("%s", shown(exc))
        raise SystemExit(1) from exc


main = hydra_main("export", export_task)
