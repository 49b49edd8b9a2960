"""`deepdetect-train`: Hydra entry point; the work is `deepdetect.training.train.train`."""

from __future__ import annotations

import logging
import sys
from typing import Any

from omegaconf import DictConfig

from deepdetect.cli._hydra import hydra_main
from deepdetect.data.manifest import ManifestError
from deepdetect.models.detector import ModelBuildError
from deepdetect.training.train import TrainConfigError, train
from deepdetect.utils.terminal import shown

log = logging.getLogger("deepdetect.train")


def train_task(cfg: DictConfig) -> Any:
    """Run training; user mistakes become a one-line error and exit code 2. Returns the monitored metric."""
    try:
        metrics = train(cfg)
    except (ModelBuildError, ManifestError, TrainConfigError) as exc:
        log.error("%s", shown(exc))
        sys.exit(2)
    return metrics.get(str(cfg.trainer.monitor))


main = hydra_main("train", train_task)

if __name__ == "__main__":
    main()
