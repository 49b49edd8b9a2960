"""`deepdetect-lofo`: leave one manipulation family out; writes the families table (see configs/lofo.yaml)."""

from __future__ import annotations

import logging

from omegaconf import DictConfig

from deepdetect.cli._hydra import hydra_main
from deepdetect.utils.terminal import shown, shown_lines

log = logging.getLogger(__name__)


def _task(cfg: DictConfig) -> None:
    """Run the study; a missing data folder, an unknown recipe or family or a bad setting exits 2 with one line."""
    from deepdetect.studies.lofo import render_markdown, run_lofo

    try:
        rows = run_lofo(cfg)
    except ValueError as exc:  # LofoError, ManifestError, LayoutError, config errors of the stages
        log.error("%s", shown(exc))
        raise SystemExit(2) from exc
    print("\n" + shown_lines(render_markdown(rows)))  # family names come from the data


main = hydra_main("lofo", _task)

if __name__ == "__main__":
    main()
