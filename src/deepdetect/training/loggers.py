"""Metric loggers: none, CSV (`output_dir/log.csv`) and Weights & Biases (imported lazily, offline-capable; always
beside log.csv)."""

from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

LOGGERS = ("none", "csv", "wandb")


class MetricLogger:
    """Base logger: ignores everything."""

    def log(self, metrics: dict[str, float], step: int) -> None:
        """Record one row of metrics."""

    def close(self) -> None:
        """Flush and release resources."""


class CsvLogger(MetricLogger):
    """Appends rows to a CSV file; the header grows when new keys appear (file rewritten)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: list[dict[str, Any]] = []
        if path.is_file():  # resumed run: keep earlier rows
            with path.open(newline="") as fh:
                self.rows = list(csv.DictReader(fh))

    def log(self, metrics: dict[str, float], step: int) -> None:
        self.rows.append({"step": step, **metrics})
        keys: list[str] = []
        for row in self.rows:
            keys += [k for k in row if k not in keys]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=keys)
            writer.writeheader()
            writer.writerows(self.rows)


class Loggers(MetricLogger):
    """Several loggers fed the same rows (wandb always beside log.csv)."""

    def __init__(self, *loggers: MetricLogger) -> None:
        self.loggers = loggers

    def log(self, metrics: dict[str, float], step: int) -> None:
        for logger in self.loggers:
            logger.log(metrics, step)

    def close(self) -> None:
        for logger in self.loggers:
            logger.close()


class WandbLogger(MetricLogger):
    """Logs to wandb; honours WANDB_MODE (e.g. offline) or `mode` from the config."""

    def __init__(self, output_dir: Path, project: str, mode: str | None, config: dict[str, Any]) -> None:
        import wandb  # lazy: heavy import, optional at runtime

        self.run = wandb.init(project=project, mode=mode, dir=str(output_dir), config=config)  # type: ignore[arg-type]

    def log(self, metrics: dict[str, float], step: int) -> None:
        self.run.log(metrics, step=step)

    def close(self) -> None:
        self.run.finish()


def build_logger(logger_cfg: Any, output_dir: Path, config: dict[str, Any], enabled: bool = True) -> MetricLogger:
    """Logger named by `logger.name`; a silent one on non-zero ranks (`enabled=False`). `wandb` logs to
    Weights & Biases and, always, to `output_dir/log.csv` too."""
    name = str(logger_cfg.get("name", "none")) if logger_cfg is not None else "none"
    if name not in LOGGERS:
        raise ValueError(f"unknown logger {name!r}; expected one of {LOGGERS}")
    if not enabled or name == "none":
        return MetricLogger()
    if name == "csv":
        return CsvLogger(output_dir / "log.csv")
    wandb = WandbLogger(output_dir, str(logger_cfg.get("project", "deepdetect")), logger_cfg.get("mode"), config)
    return Loggers(CsvLogger(output_dir / "log.csv"), wandb)
