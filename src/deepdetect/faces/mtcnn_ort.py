"""MTCNN on ONNX Runtime: facenet-pytorch's cascade (pyramid, P-Net boxes, NMS, regression, R-Net, O-Net, landmarks)
in numpy, with its three nets as ONNX files (`mtcnn_onnx`), so face detection needs no PyTorch.

The constants and every step follow facenet-pytorch 2.5.3's `detect_face`: pyramid factor 0.709 from 12 / min
size, "area" resampling (PyTorch's adaptive average pooling: each output pixel is the plain mean of the input
window [floor(i*n/m), ceil((i+1)*n/m)), computed here from an integral image), inputs (x - 127.5) / 128, P-Net
stride 2 and cell 12, NMS 0.5 per scale then 0.7 (IoU), R-Net NMS 0.7 (IoU), O-Net NMS 0.7 over the smaller box.
Frames of one size can run the cascade together (`detect_faces`): each pyramid scale's P-Net on the stack of their
levels, R-Net and O-Net on the candidates of all of them, each in one call; the steps between stay per frame (on the
CPU this is slower than one frame at a time, so it is not the default: `BATCHED_DEFAULT`).
`tests/test_mtcnn_ort.py` checks boxes and landmarks against the PyTorch MTCNN on real faces, and the batched
cascade against one frame at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import numpy as np

from deepdetect.faces.boxes import nms
from deepdetect.faces.detections import Detections, prepare_frame, refine_candidates

T = TypeVar("T")

PYRAMID_FACTOR = 0.709
PNET_STRIDE, PNET_CELL = 2, 12
STAGE_SIZES = (24, 48)  # R-Net and O-Net input sides
# Frames through each net together (`detect_faces`) or one at a time. Measured in bench/bench_mtcnn_batch.py on the
# CPU (the only device this detector runs on): the same records, but batched was 0.62-0.91x the speed of one frame
# at a time (1080p: the stacked pyramid levels and P-Net maps leave the caches), so one at a time is the default.
BATCHED_DEFAULT = False


def integral_image(img: np.ndarray) -> np.ndarray:
    """Summed-area table (H+1, W+1, 3) of an HxWx3 uint8 image: OpenCV's `integral` (int32 when the image's total
    fits, else float64, exact for these sums; 15-40x numpy's two cumsums, bench/bench_mtcnn_batch.py)."""
    import cv2

    h, w = img.shape[:2]
    depth = cv2.CV_32S if h * w * 255 < 2**31 else cv2.CV_64F
    return np.asarray(cv2.integral(np.ascontiguousarray(img), sdepth=depth))


def _windows(start: np.ndarray, length: np.ndarray, out: int) -> tuple[np.ndarray, np.ndarray]:
    """Adaptive-pooling windows [lo, hi) (K, out) of `out` cells over spans (K,) starting at `start`."""
    a = np.arange(out, dtype=np.int64)[None, :]
    n = length[:, None].astype(np.int64)
    lo = start[:, None] + (a * n) // out
    hi = start[:, None] + ((a + 1) * n + out - 1) // out
    return lo, hi


def area_resample(table: np.ndarray, rows: np.ndarray, cols: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Regions (K,) of the image behind `table`, rows [r0, r1) x cols [c0, c1) given as (K,2) arrays, each resampled
    to `size` (h, w) with PyTorch's "area" interpolation: (K, 3, h, w) float32, MTCNN-normalised."""
    r0, r1 = _windows(rows[:, 0], rows[:, 1] - rows[:, 0], size[0])
    c0, c1 = _windows(cols[:, 0], cols[:, 1] - cols[:, 0], size[1])
    flat = np.ascontiguousarray(table).reshape(-1, table.shape[2])  # the four corners as rows of one flat take
    ra, rb = (r0 * table.shape[1])[:, :, None], (r1 * table.shape[1])[:, :, None]
    ca, cb = c0[:, None, :], c1[:, None, :]
    # np.take of the flat rows: 2-3x faster than indexing table[rb, cb] with two arrays, for the same elements
    total = np.take(flat, rb + cb, axis=0) - np.take(flat, ra + cb, axis=0) - np.take(flat, rb + ca, axis=0)
    total += np.take(flat, ra + ca, axis=0)  # (K, h, w, 3)
    count = ((r1 - r0)[:, :, None] * (c1 - c0)[:, None, :]).astype(np.float32)
    mean = total.astype(np.float32) / count[..., None]
    return np.ascontiguousarray(((mean - 127.5) * 0.0078125).transpose(0, 3, 1, 2))


def area_resize(table: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The whole image behind `table` resampled to `size` (h, w) as `area_resample` does it (same sums, same
    means), in two passes: the row windows' sums first (whole rows copied), then the column windows of those."""
    h, w = table.shape[0] - 1, table.shape[1] - 1
    r0, r1 = (v[0] for v in _windows(np.zeros(1, np.int64), np.array([h]), size[0]))
    c0, c1 = (v[0] for v in _windows(np.zeros(1, np.int64), np.array([w]), size[1]))
    rows = np.take(table, r1, axis=0) - np.take(table, r0, axis=0)  # (h', W+1, 3): row windows, cumulated along x
    total = np.take(rows, c1, axis=1) - np.take(rows, c0, axis=1)  # (h', w', 3)
    count = ((r1 - r0)[:, None] * (c1 - c0)[None, :]).astype(np.float32)
    mean = total.astype(np.float32) / count[..., None]
    return np.ascontiguousarray(((mean - 127.5) * 0.0078125).transpose(2, 0, 1))


def pyramid_scales(height: int, width: int, min_size: int, factor: float = PYRAMID_FACTOR) -> list[float]:
    """P-Net's scales: from 12 / min_size down by `factor` while the shorter side stays >= 12 px."""
    m = 12.0 / min_size
    minl = min(height, width) * m
    scales = []
    scale = m
    while minl >= 12:
        scales.append(scale)
        scale *= factor
        minl *= factor
    return scales


def pnet_boxes(reg: np.ndarray, prob: np.ndarray, scale: float, threshold: float) -> np.ndarray:
    """Candidate windows (K, 9: x1 y1 x2 y2 score dx1 dy1 dx2 dy2) from P-Net's maps (4,h,w), (h,w) at `scale`."""
    ys, xs = np.nonzero(prob >= threshold)
    cell = np.stack([xs, ys], axis=1).astype(np.float32)
    s = np.float32(scale)
    q1 = np.floor((PNET_STRIDE * cell + 1) / s)
    q2 = np.floor((PNET_STRIDE * cell + PNET_CELL) / s)
    return np.concatenate([q1, q2, prob[ys, xs][:, None], reg[:, ys, xs].T], axis=1).astype(np.float32)


def square(boxes: np.ndarray) -> np.ndarray:
    """Boxes (K, >=4) made square on their longer side, about the same centre (MTCNN's `rerec`)."""
    out = boxes.copy()
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    out[:, 0] = boxes[:, 0] + w * 0.5 - side * 0.5
    out[:, 1] = boxes[:, 1] + h * 0.5 - side * 0.5
    out[:, 2] = out[:, 0] + side
    out[:, 3] = out[:, 1] + side
    return out


def regress(boxes: np.ndarray, reg: np.ndarray) -> np.ndarray:
    """Boxes (K, >=4) moved by the nets' offsets (K, 4) in units of their (w+1, h+1) (MTCNN's `bbreg`)."""
    out = boxes.copy()
    w = (boxes[:, 2] - boxes[:, 0] + 1)[:, None]
    h = (boxes[:, 3] - boxes[:, 1] + 1)[:, None]
    out[:, :4] = boxes[:, :4] + reg[:, :4] * np.concatenate([w, h, w, h], axis=1)
    return out


def clip_regions(boxes: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixel rows and cols [start, end) (K,2) of each box cut to the image (MTCNN's `pad`: no padding outside), and
    the mask of boxes that keep at least one pixel."""
    b = np.trunc(boxes[:, :4]).astype(np.int64)
    x, y = np.maximum(b[:, 0], 1), np.maximum(b[:, 1], 1)
    ex, ey = np.minimum(b[:, 2], width), np.minimum(b[:, 3], height)
    ok = (ey > y - 1) & (ex > x - 1)
    return np.stack([y - 1, ey], axis=1), np.stack([x - 1, ex], axis=1), ok


class MtcnnNets:
    """P-Net, R-Net and O-Net as ONNX Runtime sessions on the CPU, `threads` intra-op threads each (default one),
    no spinning: frames run in parallel on the caller's threads (a session's `run` is thread-safe and releases
    the GIL)."""

    def __init__(self, paths: dict[str, Path], threads: int = 1) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, int(threads))
        opts.inter_op_num_threads = 1
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.log_severity_level = 3
        self.sessions = {
            name: ort.InferenceSession(str(paths[name]), sess_options=opts, providers=["CPUExecutionProvider"])
            for name in ("pnet", "rnet", "onet")
        }

    def __call__(self, name: str, batch: np.ndarray) -> list[np.ndarray]:
        """The named net's outputs for one float32 NCHW batch."""
        return [np.asarray(o) for o in self.sessions[name].run(None, {"image": batch})]


def _first_stage(
    nets: MtcnnNets, tables: Sequence[np.ndarray], h: int, w: int, min_size: int, threshold: float
) -> list[np.ndarray]:
    """P-Net over the pyramid of frames of one size, each scale's levels of every frame in one call: per frame,
    regressed, squared candidate boxes (K, 5) after NMS within and across scales."""
    found: list[list[np.ndarray]] = [[] for _ in tables]
    for scale in pyramid_scales(h, w, min_size):
        size = (int(h * scale + 1), int(w * scale + 1))
        reg, prob = nets("pnet", np.stack([area_resize(t, size) for t in tables]))
        for k in range(len(tables)):
            boxes = pnet_boxes(reg[k], prob[k, 1], scale, threshold)
            if len(boxes):
                found[k].append(boxes[nms(boxes[:, :4], boxes[:, 4], 0.5)])
    out = []
    for parts in found:
        if not parts:
            out.append(np.zeros((0, 5), np.float32))
            continue
        boxes = np.concatenate(parts)
        boxes = boxes[nms(boxes[:, :4], boxes[:, 4], 0.7)]
        rw, rh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        moved = boxes[:, :4] + boxes[:, 5:9] * np.stack([rw, rh, rw, rh], axis=1)
        out.append(square(np.concatenate([moved, boxes[:, 4:5]], axis=1).astype(np.float32)))
    return out


def _crops(table: np.ndarray, boxes: np.ndarray, h: int, w: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The boxes' image regions resampled to size x size, and the boxes that had pixels in the image."""
    rows, cols, ok = clip_regions(boxes, w, h)
    return area_resample(table, rows[ok], cols[ok], (size, size)), boxes[ok]


def _stage(
    nets: MtcnnNets, name: str, tables: Sequence[np.ndarray], boxes: list[np.ndarray], h: int, w: int
) -> tuple[list[np.ndarray], list[list[np.ndarray]]]:
    """One refining net on the boxes of every frame in one call: per frame, the boxes that had pixels in the image
    and the net's outputs for them."""
    size = STAGE_SIZES[0] if name == "rnet" else STAGE_SIZES[1]
    crops = [_crops(t, b, h, w, size) for t, b in zip(tables, boxes, strict=True)]
    kept = [b for _, b in crops]
    counts = [len(b) for b in kept]
    if sum(counts) == 0:
        return kept, [[] for _ in kept]
    outs = nets(name, np.concatenate([c for c, _ in crops]))
    cuts = np.cumsum(counts)[:-1]
    per_out = [np.split(o, cuts) for o in outs]
    return kept, [[o[k] for o in per_out] for k in range(len(kept))]


def _last_stages(
    nets: MtcnnNets,
    tables: Sequence[np.ndarray],
    boxes: list[np.ndarray],
    h: int,
    w: int,
    thresholds: Sequence[float],
) -> list[tuple[np.ndarray, np.ndarray]]:
    """R-Net then O-Net on the square candidate boxes (K, 5) of frames of one size, each net in one call for all
    frames: per frame, faces (K', 5) with scores and landmarks (K', 5, 2)."""
    empty = (np.zeros((0, 5), np.float32), np.zeros((0, 5, 2), np.float32))
    kept, outs = _stage(nets, "rnet", tables, boxes, h, w)
    second = []
    for b, out in zip(kept, outs, strict=True):
        if len(b) == 0:
            second.append(np.zeros((0, 5), np.float32))
            continue
        reg, prob = out
        keep = prob[:, 1] > thresholds[1]
        b = np.concatenate([b[keep, :4], prob[keep, 1:2]], axis=1)
        reg = reg[keep]
        pick = nms(b[:, :4], b[:, 4], 0.7)
        second.append(square(regress(b[pick], reg[pick])))
    kept, outs = _stage(nets, "onet", tables, second, h, w)
    results = []
    for b, out in zip(kept, outs, strict=True):
        if len(b) == 0:
            results.append(empty)
            continue
        reg, marks, prob = out
        keep = prob[:, 1] > thresholds[2]
        b = np.concatenate([b[keep, :4], prob[keep, 1:2]], axis=1)
        reg, marks = reg[keep], marks[keep]
        if len(b) == 0:
            results.append(empty)
            continue
        bw = (b[:, 2] - b[:, 0] + 1)[:, None]
        bh = (b[:, 3] - b[:, 1] + 1)[:, None]
        points = np.stack([bw * marks[:, :5] + b[:, 0:1] - 1, bh * marks[:, 5:] + b[:, 1:2] - 1], axis=2)
        b = regress(b, reg)
        pick = nms(b[:, :4], b[:, 4], 0.7, "min")
        results.append((b[pick].astype(np.float32), points[pick].astype(np.float32)))
    return results


def detect_faces(
    nets: MtcnnNets, imgs: Sequence[np.ndarray], min_size: int, thresholds: Sequence[float]
) -> list[tuple[np.ndarray, np.ndarray]]:
    """MTCNN's whole cascade on HxWx3 uint8 images of one size, each net called once per pyramid scale or stage
    for all of them: per image, faces (K, 5: x1 y1 x2 y2 score) and landmarks (K, 5, 2)."""
    if len({img.shape for img in imgs}) > 1:
        raise ValueError("detect_faces takes images of one size")
    if not imgs:
        return []
    h, w = imgs[0].shape[:2]
    tables = [integral_image(img) for img in imgs]
    boxes = _first_stage(nets, tables, h, w, min_size, thresholds[0])
    return _last_stages(nets, tables, boxes, h, w, thresholds)


def detect_face(
    nets: MtcnnNets, img: np.ndarray, min_size: int, thresholds: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """MTCNN's whole cascade on one HxWx3 uint8 image: faces (K, 5: x1 y1 x2 y2 score), landmarks (K, 5, 2)."""
    return detect_faces(nets, [img], min_size, thresholds)[0]


class OrtFaceDetector:
    """MTCNN on ONNX Runtime with `FaceDetector`'s interface and settings (`detect`, `refine`, `map_frames`): one
    `Detections` per RGB uint8 frame, in full-resolution pixels. With `batched`, frames of one call and one size go
    through each net together (the same records as one frame at a time; see `BATCHED_DEFAULT`), in chunks run on
    `frame_workers` threads; else each frame is a chunk of its own."""

    backend = "ort"
    device = "cpu"

    def __init__(
        self,
        min_face_size: int = 20,
        thresholds: Sequence[float] = (0.6, 0.7, 0.7),
        downscale: float | None = None,
        batch_size: int = 16,
        frame_workers: int = 1,
        onnx_dir: Path | None = None,
        batched: bool = BATCHED_DEFAULT,
    ) -> None:
        from deepdetect.faces.mtcnn_onnx import mtcnn_onnx_paths

        self.min_face_size = int(min_face_size)
        self.thresholds = tuple(float(t) for t in thresholds)
        self.downscale = downscale
        self.batch_size = max(1, int(batch_size))
        self.frame_workers = max(1, int(frame_workers))
        self.batched = bool(batched)
        self._frame_pool: ThreadPoolExecutor | None = None
        self.nets = MtcnnNets(mtcnn_onnx_paths(onnx_dir))

    def map_frames(self, fn: Callable[[int], T], todo: Sequence[int]) -> Iterator[T]:
        """`fn` over `todo` in order, on the detector's `frame_workers` threads."""
        if self.frame_workers == 1 or len(todo) < 2:
            return map(fn, todo)
        if self._frame_pool is None:
            self._frame_pool = ThreadPoolExecutor(self.frame_workers, thread_name_prefix="detect")
        return self._frame_pool.map(fn, todo)

    def _detect_same_size(self, imgs: Sequence[np.ndarray], scale: float) -> list[Detections]:
        """Frames prepared to one size and scale, through the cascade together (`batched`) or one by one."""
        min_size = max(12, round(self.min_face_size * scale))
        if min(imgs[0].shape[:2]) < min_size:  # smaller than the smallest detectable face: none
            return [Detections() for _ in imgs]
        if self.batched:
            found = detect_faces(self.nets, imgs, min_size, self.thresholds)
        else:
            found = [detect_face(self.nets, img, min_size, self.thresholds) for img in imgs]
        return [Detections(b[:, :4] / scale, b[:, 4].copy(), p / scale) for b, p in found]

    def detect(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        """Detect faces in each frame; boxes and landmarks are mapped back to the frame's full resolution. Frames of
        one size go through each net together, in up to `batch_size` frames per call, split over `frame_workers`."""
        prepared = [prepare_frame(f, self.downscale) for f in frames]
        groups: dict[tuple[tuple[int, ...], float], list[int]] = {}
        for i, (img, scale) in enumerate(prepared):
            groups.setdefault((img.shape, scale), []).append(i)
        chunks = []
        for idx in groups.values():
            per = min(self.batch_size, -(-len(idx) // self.frame_workers)) if self.batched else 1
            chunks += [idx[k : k + per] for k in range(0, len(idx), per)]

        def run(c: int) -> list[Detections]:
            chunk = chunks[c]
            return self._detect_same_size([prepared[i][0] for i in chunk], prepared[chunk[0]][1])

        out: list[Detections] = [Detections()] * len(frames)
        for chunk, found in zip(chunks, self.map_frames(run, range(len(chunks))), strict=True):
            for i, det in zip(chunk, found, strict=True):
                out[i] = det
        return out

    def refine(self, frame: np.ndarray, candidates: np.ndarray) -> Detections:
        """MTCNN's R-Net and O-Net on candidate boxes (full-res x1y1x2y2) instead of P-Net's proposals (tracking)."""
        cand = np.asarray(candidates, dtype=np.float32).reshape(-1, 4)
        img, scale = prepare_frame(frame, self.downscale)
        if len(cand) == 0 or min(img.shape[:2]) < 12:
            return Detections()
        h, w = img.shape[:2]
        table = integral_image(img)

        def stages(c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            start = square(np.concatenate([c, np.zeros((len(c), 1), np.float32)], axis=1))
            return _last_stages(self.nets, [table], [start], h, w, self.thresholds)[0]

        boxes, points = refine_candidates(stages, cand * scale)
        if len(boxes) == 0:
            return Detections()
        return Detections(boxes[:, :4] / scale, boxes[:, 4].copy(), points / scale)

    def __call__(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        """Alias of `detect`."""
        return self.detect(frames)
