"""Optional smaller variants of an exported model: static INT8 (QDQ, calibrated on real crops) and fp16."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from deepdetect.contract.onnx import INPUT_NAME

log = logging.getLogger(__name__)


def quantize_int8(src: str | os.PathLike[str], dst: str | os.PathLike[str], calibration: np.ndarray) -> Path:
    """Static QDQ INT8 quantization (int8 weights per channel, uint8 activations) calibrated on an NCHW batch."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class _Reader(CalibrationDataReader):
        """Feeds the calibration crops one at a time."""

        def __init__(self, batch: np.ndarray) -> None:
            self._items = iter([{INPUT_NAME: batch[i : i + 1]} for i in range(len(batch))])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._items, None)

    dst = Path(dst)
    quantize_static(
        str(src),
        str(dst),
        _Reader(calibration),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
    )
    _copy_metadata(src, dst)
    return dst


def convert_fp16(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> Path:
    """fp16 weights and compute with float32 input/output kept; needs onnxruntime.transformers.float16."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load(str(src))
    half = convert_float_to_float16(model, keep_io_types=True)
    onnx.save(half, str(dst))
    _copy_metadata(src, dst)
    return Path(dst)


def _copy_metadata(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
    """Carry the contract over to a converted file."""
    source = onnx.load(str(src), load_external_data=False)
    target = onnx.load(str(dst))
    del target.metadata_props[:]
    target.metadata_props.extend(source.metadata_props)
    onnx.save(target, str(dst))


def time_session(session: Any, batch: np.ndarray, repeats: int = 3) -> float:
    """Best-of-`repeats` seconds to run the whole batch once (after one warm-up run)."""
    feed = {session.get_inputs()[0].name: batch}
    session.run(None, feed)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        session.run(None, feed)
        best = min(best, time.perf_counter() - start)
    return best
