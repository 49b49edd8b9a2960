"""`deepdetect-reference`: the reference detector on the development data, end to end."""

from __future__ import annotations

import logging

from omegaconf import DictConfig

from deepdetect.cli._hydra import hydra_main
from deepdetect.utils.terminal import shown

log = logging.getLogger(__name__)


def _task(cfg: DictConfig) -> None:
    """Run the reference recipe; a missing data folder or a bad setting exits 2 with one line."""
    from deepdetect.reference import run_reference

    try:
        result = run_reference(cfg)
    except ValueError as exc:  # ReferenceError, ManifestError, config errors of the stages
        log.error("%s", shown(exc))
        raise SystemExit(2) from exc
    lines = [f"  {k:<12}: {v}" for k, v in result.headline.items()]
    print(
        "\ndeepdetect reference finished\n"
        + "".join(
            f"  model       : {shown(p / 'model.safetensors')} ({shown(name)})\n" for name, p in result.runs.items()
        )
        + (f"  stacker     : {shown(result.stacker)}\n" if result.stacker else "")
        + "".join(f"  report      : {shown(p)}\n" for p in result.reports.values())
        + f"  ONNX model  : {shown(result.onnx_model)}\n"
        + "\n".join(lines)
    )


main = hydra_main("reference", _task)

if __name__ == "__main__":
    main()
