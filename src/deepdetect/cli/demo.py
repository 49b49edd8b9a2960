"""`deepdetect-demo`: the whole pipeline offline on a generated sample set."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from omegaconf import DictConfig

from deepdetect.cli._hydra import hydra_main
from deepdetect.utils.terminal import shown, shown_lines

if TYPE_CHECKING:
    from deepdetect.demo import DemoResult


def print_result(result: DemoResult) -> None:
    """Where each stage wrote its outputs; predict's model-trust warning, as predict prints it, on stderr."""
    auc = "n/a" if result.test_video_auc is None else f"{result.test_video_auc:.3f}"
    text = (
        "\ndeepdetect demo finished\n"
        f"  sample inputs : {result.sample_dir}\n"
        f"  crop manifest : {result.manifest}\n"
        f"  trained model : {result.run_dir / 'model.safetensors'}  (test video AUC {auc}; a tiny model trained "
        "for seconds on synthetic swaps: a pipeline check, not a detector)\n"
        f"  report        : {result.report}\n"
        f"  ONNX model    : {result.onnx_model}\n"
        f"  predictions   : {result.predictions}  {result.prediction_status}\n"
        f"  triage page   : {result.triage_page}\n"
    )
    print(shown_lines(text))  # the folders are the user's output_dir: names escaped
    if result.trust_warning is not None:
        print(f"deepdetect-demo: warning: {shown(result.trust_warning)}", file=sys.stderr)


def _task(cfg: DictConfig) -> float | None:
    from deepdetect.demo import run_demo

    result = run_demo(cfg)
    print_result(result)
    return result.test_video_auc


main = hydra_main("demo", _task)

if __name__ == "__main__":
    main()
