"""Optional smaller variants of an exported model: static INT8 (calibrated on real crops) and fp16.

Why INT8 used to be slower than fp32 on CPU (measured in `bench/bench_int8.py`, docs/performance.md): the
TorchScript export leaves shape arithmetic (timm's dynamic "same" padding: Shape -> Gather -> Ceil -> Pad) and
`Identity` copies of weights in the graph, and EfficientNet's squeeze-excite pools with `ReduceMean`, which has no
int8 kernel. ONNX Runtime then keeps those convolutions in float (a conv whose bias is not an initializer is not
quantized) and puts a DequantizeLinear over a full feature map in front of every SE block. `prepare_for_int8`
removes both: it freezes every tensor that depends only on the (static) input height and width, rewrites
`ReduceMean` over H,W into `GlobalAveragePool` (identical maths, int8 kernel), then runs onnxruntime's own
pre-processing (shape inference, basic fusions). After that every Conv runs as QLinearConv with u8 activations
and s8 per-channel weights, the VNNI fast path.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from deepdetect.contract.onnx import INPUT_NAME
from deepdetect.inference.runtime import run_session

log = logging.getLogger(__name__)

INT8_FORMATS = ("qdq", "qoperator")
CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
KEEP_FP32_KEYWORDS = ("first", "last")
COMPUTE_OPS = ("Conv", "Gemm", "MatMul")
EXPERT_NODE = re.compile(r"^/experts\.(\d+)/")  # node names of a fused model's experts (torch.nn.ModuleList)


@dataclass(frozen=True)
class Int8Settings:
    """How to make the INT8 variant: graph preparation, ONNX quantization format, per-channel weights, calibration,
    and which nodes stay in float (mixed precision)."""

    prepare: bool = True  # freeze static-shape arithmetic, ReduceMean(H,W) -> GlobalAveragePool, ORT pre-processing
    format: str = "qdq"  # qdq (QuantizeLinear/DequantizeLinear pairs) | qoperator (QLinearConv, ...)
    per_channel: bool = True  # one weight scale per output channel (same speed here, closer to fp32)
    calibration: str = "minmax"  # minmax | entropy | percentile
    percentile: float = 99.999  # calibration=percentile: the activation range covers this share of the values
    histogram_bins: int = 2048  # entropy and percentile histograms (ORT's quantize_static alone uses 128)
    # Nodes left in float: "first:N" (a float prefix through the N-th Conv/Gemm/MatMul; "first" = the stem conv, which
    # reads the normalised input), "last:N" (a float suffix), or node names of the prepared graph; see `fp32_nodes`.
    keep_fp32: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.format not in INT8_FORMATS:
            raise ValueError(f"int8 format must be one of {INT8_FORMATS}, got {self.format!r}")
        if self.calibration not in CALIBRATION_METHODS:
            raise ValueError(f"int8 calibration must be one of {CALIBRATION_METHODS}, got {self.calibration!r}")
        if not 50.0 < self.percentile <= 100.0:
            raise ValueError(f"int8 percentile must be in (50, 100], got {self.percentile}")
        if self.histogram_bins < 512:
            raise ValueError(f"int8 histogram_bins must be >= 512, got {self.histogram_bins}")
        if isinstance(self.keep_fp32, str) or not all(isinstance(n, str) and n for n in self.keep_fp32):
            raise ValueError(f"int8 keep_fp32 must list first[:N], last[:N] or node names, got {self.keep_fp32!r}")
        for entry in self.keep_fp32:
            _keyword_count(entry)

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | None) -> Int8Settings:
        """Settings from an export config's `quantize.int8_settings` node (missing keys keep the defaults)."""
        known = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in dict(cfg or {}).items() if k in known and v is not None}
        unknown = sorted(set(dict(cfg or {})) - known)
        if unknown:
            raise ValueError(f"unknown int8 settings {unknown}; known: {sorted(known)}")
        if "keep_fp32" in values:
            keep = values["keep_fp32"]
            values["keep_fp32"] = (keep,) if isinstance(keep, str) else tuple(str(n) for n in keep)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for export.json)."""
        out = asdict(self)
        out["keep_fp32"] = list(self.keep_fp32)
        return out


def _keyword_count(entry: str) -> tuple[str, int] | None:
    """("first", 3) for "first:3", ("last", 1) for "last"; None for a node name."""
    word, _, count = entry.partition(":")
    if word not in KEEP_FP32_KEYWORDS:
        return None
    if count and not (count.isdigit() and int(count) > 0):
        raise ValueError(f"keep_fp32 {entry!r}: expected {word} or {word}:N with N >= 1")
    return word, int(count or 1)


def expert_parts(model: onnx.ModelProto) -> list[list[str]]:
    """A fused model's node names per expert (`/experts.<i>/...`, export/fused.py), in graph order; [] otherwise."""
    parts: dict[int, list[str]] = {}
    for node in model.graph.node:
        match = EXPERT_NODE.match(node.name)
        if match:
            parts.setdefault(int(match.group(1)), []).append(node.name)
    return [parts[i] for i in sorted(parts)]


def _expand_keyword(model: onnx.ModelProto, names: list[str], word: str, count: int, entry: str) -> list[str]:
    """The float prefix ("first") or suffix ("last") through the `count`-th compute node among `names`."""
    op = {node.name: node.op_type for node in model.graph.node}
    compute = [i for i, name in enumerate(names) if op[name] in COMPUTE_OPS]
    if count > len(compute):
        raise ValueError(f"keep_fp32 {entry!r}: the graph has only {len(compute)} {COMPUTE_OPS} nodes")
    return names[: compute[count - 1] + 1] if word == "first" else names[compute[-count] :]


def fp32_nodes(model: onnx.ModelProto, keep: Sequence[str]) -> list[str]:
    """The node names `keep` stands for in this graph (first:N / last:N expanded); an unknown name is an error.

    "first:N" is every node up to and including the N-th Conv/Gemm/MatMul (a float prefix: the graph input is
    never quantized), "last:N" every node from the N-th last one on. A single float node between int8 nodes does
    not stay float on ONNX Runtime's CPU provider: its WeightBiasQuantization pass quantizes the weights of a float
    Conv that sits between DequantizeLinear and QuantizeLinear when the session loads. Hence the prefix/suffix form.

    A fused model (several experts on one input, then the stacker's weighted sum) applies "first:N" / "last:N" to
    each expert's own chain, and its stacker (every node outside the experts) always stays float: quantizing the
    fused logit to 8 bits would round every score.
    """
    nodes = [node.name for node in model.graph.node]
    parts = expert_parts(model)
    in_experts = {name for part in parts for name in part}
    resolved: list[str] = [name for name in nodes if name not in in_experts] if parts else []
    for entry in keep:
        keyword = _keyword_count(entry)
        if keyword is not None:
            names = [n for part in parts or [nodes] for n in _expand_keyword(model, part, *keyword, entry)]
        elif entry in nodes:
            names = [entry]
            log.warning("keep_fp32 %r: on the CPU provider a float node between int8 nodes is re-quantized", entry)
        else:
            compute = [node.name for node in model.graph.node if node.op_type in COMPUTE_OPS]
            raise ValueError(
                f"keep_fp32: no node named {entry!r} in the graph to quantize; use first[:N], last[:N] or a node "
                f"name, e.g. {compute[:3]}"
            )
        resolved.extend(name for name in names if name not in resolved)
    return resolved


def _shape_only_tensors(graph: onnx.GraphProto) -> set[str]:
    """Tensors computed from initializers, constants and Shape nodes only (never from the input's values)."""
    known = {init.name for init in graph.initializer}
    for node in graph.node:  # exported graphs are topologically sorted
        inputs = [name for name in node.input if name]
        if node.op_type == "Shape" or all(name in known for name in inputs):
            known.update(out for out in node.output if out)
    return known


def _prune_dead(graph: onnx.GraphProto, replaced: set[str] | None = None) -> None:
    """Drop nodes, initializers and value_info that no graph output depends on (`replaced`: now initializers)."""
    replaced = replaced or set()
    needed = {out.name for out in graph.output}
    keep: list[onnx.NodeProto] = []
    for node in reversed(list(graph.node)):
        if any(out in needed and out not in replaced for out in node.output if out):
            keep.append(node)
            needed.update(name for name in node.input if name)
    keep.reverse()
    del graph.node[:]
    graph.node.extend(keep)
    live = [init for init in graph.initializer if init.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(live)
    info = [vi for vi in graph.value_info if vi.name in needed]
    del graph.value_info[:]
    graph.value_info.extend(info)


def freeze_static_shapes(model: onnx.ModelProto, batch_sizes: Sequence[int] = (1, 2)) -> int:
    """Replace shape-only tensors that are equal at every probed batch size by initializers; returns how many.

    The input's height and width are fixed by the contract; only the batch is dynamic. A tensor that depends on
    the batch size (a Reshape target built from Shape()[0]) differs between the probes and is left alone.
    """
    import onnxruntime as ort

    graph = model.graph
    derived = _shape_only_tensors(graph)
    inits = {init.name for init in graph.initializer}
    frontier: list[str] = []
    for node in graph.node:
        if node.op_type == "Shape" or all(name in derived for name in node.input if name):
            continue
        frontier.extend(n for n in node.input if n and n in derived and n not in inits and n not in frontier)
    if not frontier:
        return 0
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    del probe.graph.output[:]
    probe.graph.output.extend(helper.make_empty_tensor_value_info(name) for name in frontier)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.log_severity_level = 3
    session = ort.InferenceSession(probe.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    first = graph.input[0]
    dims = [d.dim_value for d in first.type.tensor_type.shape.dim][1:]
    if not dims or any(d <= 0 for d in dims):
        raise ValueError(f"input {first.name!r} needs static non-batch dims to freeze shapes, got {dims}")
    runs = [session.run(None, {first.name: np.zeros([b, *dims], dtype=np.float32)}) for b in batch_sizes]
    frozen: dict[str, np.ndarray] = {}
    for k, name in enumerate(frontier):
        values = [np.asarray(run[k]) for run in runs]
        if all(v.dtype == values[0].dtype and np.array_equal(v, values[0]) for v in values[1:]):
            frozen[name] = values[0]
    for node in graph.node:  # a node with several outputs is replaced whole or not at all
        outs = [out for out in node.output if out]
        if any(out in frozen for out in outs) and not all(out in frozen for out in outs):
            for out in outs:
                frozen.pop(out, None)
    graph.initializer.extend(numpy_helper.from_array(value, name) for name, value in frozen.items())
    _prune_dead(graph, set(frozen))
    return len(frozen)


def reduce_mean_to_global_pool(model: onnx.ModelProto) -> int:
    """Rewrite ReduceMean over the last two axes (keepdims) of a 4-D tensor as GlobalAveragePool; returns how many."""
    graph = model.graph
    inits = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    rank = {vi.name: len(vi.type.tensor_type.shape.dim) for vi in graph.value_info}
    count = 0
    for index, node in enumerate(list(graph.node)):
        if node.op_type != "ReduceMean":
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        axes = attrs.get("axes")
        if axes is None and len(node.input) > 1 and node.input[1] in inits:
            axes = inits[node.input[1]].tolist()
        if axes is None or int(attrs.get("keepdims", 1)) != 1 or rank.get(node.input[0], 4) != 4:
            continue
        if sorted(int(a) for a in axes) not in ([2, 3], [-2, -1]):
            continue
        pool = helper.make_node("GlobalAveragePool", [node.input[0]], list(node.output), name=f"{node.name}/gap")
        graph.node.remove(node)
        graph.node.insert(index, pool)
        count += 1
    if count:
        _prune_dead(graph)  # the axes constants
    return count


def prepare_for_int8(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> dict[str, int]:
    """Write a float graph ready for quantization (same outputs as `src`); returns what was rewritten."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    model = onnx.load(str(src))
    model = onnx.shape_inference.infer_shapes(model)
    stats = {"frozen_shape_tensors": freeze_static_shapes(model)}
    stats["reduce_mean_to_global_pool"] = reduce_mean_to_global_pool(model)
    onnx.checker.check_model(model)
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp) / "staged.onnx"
        onnx.save(model, str(staged))
        quant_pre_process(str(staged), str(dst))
    return stats


class _Reader:
    """Feeds calibration crops one at a time (onnxruntime's CalibrationDataReader protocol)."""

    def __init__(self, batch: np.ndarray) -> None:
        self._items = iter([{INPUT_NAME: batch[i : i + 1]} for i in range(len(batch))])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._items, None)

    def __iter__(self) -> _Reader:
        return self

    def __next__(self) -> dict[str, np.ndarray]:
        item = self.get_next()
        if item is None:
            raise StopIteration
        return item


def _calibrator_options(settings: Int8Settings) -> dict[str, Any]:
    """onnxruntime calibrator options for the method: histogram size, percentile, asymmetric ranges (u8)."""
    if settings.calibration == "entropy":
        # ORT's quantize_static cannot pass these and uses 128 bins for 128 quantized bins, where the KL search has a
        # single candidate, the full range: entropy then equals minmax exactly. 256 = the u8 activation levels.
        return {"num_bins": settings.histogram_bins, "num_quantized_bins": 256, "symmetric": False}
    if settings.calibration == "percentile":
        return {"num_bins": settings.histogram_bins, "percentile": settings.percentile, "symmetric": False}
    return {}


def calibrate_ranges(
    src: str | os.PathLike[str], calibration: np.ndarray, settings: Int8Settings, cache: str | os.PathLike[str]
) -> Path:
    """Activation ranges of every tensor of `src` over the calibration batch, written as an ORT calibration cache."""
    from onnxruntime.quantization.calibrate import create_calibrator, save_tensors_data

    with tempfile.TemporaryDirectory() as tmp:
        calibrator = create_calibrator(
            Path(src),
            [],
            augmented_model_path=str(Path(tmp) / "augmented.onnx"),
            calibrate_method=_calibration_method(settings.calibration),
            extra_options=_calibrator_options(settings),
        )
        calibrator.collect_data(_Reader(calibration))
        save_tensors_data(calibrator.compute_data(), cache)
    return Path(cache)


def _calibration_method(name: str) -> Any:
    """onnxruntime's CalibrationMethod for a `Int8Settings.calibration` name."""
    from onnxruntime.quantization import CalibrationMethod

    methods = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }
    return methods[name]


def quantize_int8(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    calibration: np.ndarray,
    settings: Int8Settings | None = None,
) -> Path:
    """Static INT8 (u8 activations, s8 weights) calibrated on an NCHW batch; see `Int8Settings` for the knobs."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    settings = settings or Int8Settings()
    dst = Path(dst)
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(src)
        if settings.prepare:
            source = Path(tmp) / "prepared.onnx"
            stats = prepare_for_int8(src, source)
            log.info("int8 preparation: %s", stats)
        keep = fp32_nodes(onnx.load(str(source), load_external_data=False), settings.keep_fp32)
        if keep:
            log.info("int8: keeping %s in float", keep)
        cache = calibrate_ranges(source, calibration, settings, Path(tmp) / "ranges.json")
        quantize_static(
            str(source),
            str(dst),
            None,  # the ranges come from the cache (the calibrator above, with the histogram settings applied)
            quant_format=QuantFormat.QDQ if settings.format == "qdq" else QuantFormat.QOperator,
            per_channel=settings.per_channel,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=_calibration_method(settings.calibration),
            nodes_to_exclude=keep,
            calibration_cache_path=str(cache),
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


def runtime_op_counts(path: str | os.PathLike[str]) -> dict[str, int]:
    """Operator counts of the graph onnxruntime actually runs on CPU (after its fusions), e.g. QLinearConv vs Conv."""
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        optimized = Path(tmp) / "optimized.onnx"
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        opts.optimized_model_filepath = str(optimized)
        ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        graph = onnx.load(str(optimized), load_external_data=False).graph
    return dict(Counter(node.op_type for node in graph.node).most_common())


def int8_coverage(op_counts: Mapping[str, int]) -> dict[str, int]:
    """Convolutions running as int8 vs float, and the quantize/dequantize nodes left between float and int8 ops."""
    return {
        "int8_conv": int(op_counts.get("QLinearConv", 0) + op_counts.get("ConvInteger", 0)),
        "float_conv": int(op_counts.get("Conv", 0) + op_counts.get("FusedConv", 0)),
        "quantize_linear": int(op_counts.get("QuantizeLinear", 0)),
        "dequantize_linear": int(op_counts.get("DequantizeLinear", 0)),
    }


def time_sessions(
    sessions: Mapping[str, Any], batch: np.ndarray, repeats: int = 5, batch_size: int = 32
) -> dict[str, list[float]]:
    """Seconds per pass over the whole batch for each session, interleaved (A B A B ...) after one warm-up each.

    Each pass runs the batch in chunks of `batch_size`, as `run_session` scores it: one ORT run over a thousand
    224 px crops holds every activation of every crop at once (tens of GB for an EfficientNet).
    """
    times: dict[str, list[float]] = {name: [] for name in sessions}
    for session in sessions.values():
        run_session(session, batch, batch_size)
    for _ in range(repeats):
        for name, session in sessions.items():
            start = time.perf_counter()
            run_session(session, batch, batch_size)
            times[name].append(time.perf_counter() - start)
    return times


def time_session(session: Any, batch: np.ndarray, repeats: int = 3) -> float:
    """Best-of-`repeats` seconds to run the whole batch once (after one warm-up run)."""
    return min(time_sessions({"s": session}, batch, repeats)["s"])
