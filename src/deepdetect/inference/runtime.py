"""onnxruntime sessions for exported models (shared by predict and export's parity check)."""

from __future__ import annotations

import os

import numpy as np
import onnxruntime as ort

QUIET, VERBOSE = 3, 2  # onnxruntime log severities: errors only | warnings too
_severity = QUIET


def ort_verbosity(verbose: bool) -> None:
    """Whether onnxruntime's own warnings (e.g. graph optimisation notes on INT8 models) reach the terminal: only
    when `verbose` (predict -v); errors always do. Applies to the sessions made after the call."""
    global _severity
    _severity = VERBOSE if verbose else QUIET
    ort.set_default_logger_severity(_severity)


def ort_session(
    path: str | os.PathLike[str], threads: int | None = None, device: str = "cpu", spinning: bool = True
) -> ort.InferenceSession:
    """An onnxruntime session on CPU (or CUDA when asked and available), with a fixed thread count if given.

    `spinning=False` stops ORT's idle threads from busy-waiting between calls: what predict wants, where the
    detector's threads need the same cores between model calls.
    """
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = int(threads)
        opts.inter_op_num_threads = 1
    if not spinning:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = _severity
    providers = ["CPUExecutionProvider"]
    if device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    return ort.InferenceSession(str(path), sess_options=opts, providers=providers)


def run_session(session: ort.InferenceSession, batch: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """Logits (N,) for a float32 NCHW batch, run in chunks."""
    name = session.get_inputs()[0].name
    outs = [
        np.asarray(session.run(None, {name: batch[i : i + batch_size]})[0], dtype=np.float32).reshape(-1)
        for i in range(0, len(batch), batch_size)
    ]
    return np.concatenate(outs) if outs else np.zeros((0,), dtype=np.float32)
