"""MTCNN's three networks as ONNX files in a cache folder, exported once from the installed facenet-pytorch weights.

The cache key is the SHA-256 of the three weight files, so a facenet-pytorch upgrade with new weights gets new
files. Export needs PyTorch (imported only then); using the cached files needs only ONNX Runtime. Files are
written to a temporary name and renamed, so concurrent first runs never see half a file. Nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from deepdetect.utils.packages import package_dir

NETS = ("pnet", "rnet", "onet")
OPSET = 17
CACHE_ENV = "DEEPDETECT_CACHE_DIR"


class MtcnnOnnxError(RuntimeError):
    """MTCNN's ONNX files cannot be found or made (facenet-pytorch missing, cache folder not writable)."""


def weights_dir() -> Path:
    """facenet-pytorch's folder of MTCNN weights (`pnet.pt`, ...), found without importing facenet-pytorch."""
    package = package_dir("facenet_pytorch")
    if package is None:
        raise MtcnnOnnxError("facenet-pytorch is not installed: its MTCNN weights are needed to make the ONNX nets")
    folder = package / "data"
    missing = [n for n in NETS if not (folder / f"{n}.pt").is_file()]
    if missing:
        raise MtcnnOnnxError(f"facenet-pytorch's MTCNN weights are missing in {folder}: {', '.join(missing)}")
    return folder


def cache_root() -> Path:
    """`$DEEPDETECT_CACHE_DIR`, else `$XDG_CACHE_HOME/deepdetect`, else `~/.cache/deepdetect`."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "deepdetect"


def weights_key(folder: Path) -> str:
    """Short SHA-256 of the three weight files together (the cache folder's name)."""
    digest = hashlib.sha256()
    for name in NETS:
        digest.update((folder / f"{name}.pt").read_bytes())
    return digest.hexdigest()[:16]


def mtcnn_onnx_paths(root: Path | None = None) -> dict[str, Path]:
    """The three nets' ONNX files ({"pnet": path, ...}), exported into the cache on first use."""
    folder = weights_dir()
    target = (root or cache_root()) / f"mtcnn-onnx-{weights_key(folder)}-opset{OPSET}"
    paths = {name: target / f"{name}.onnx" for name in NETS}
    if all(p.is_file() for p in paths.values()):
        return paths
    try:
        target.mkdir(parents=True, exist_ok=True)
        export_nets(paths)
    except OSError as exc:
        raise MtcnnOnnxError(f"cannot write MTCNN's ONNX files to {target}: {exc}") from exc
    return paths


def export_nets(paths: dict[str, Path]) -> None:
    """Export facenet-pytorch's PNet, RNet and ONet (pretrained, eval mode) to `paths` with dynamic batch sizes
    (and, for PNet, dynamic height and width)."""
    import torch
    from facenet_pytorch.models.mtcnn import ONet, PNet, RNet

    specs = {
        "pnet": (PNet, (1, 3, 48, 64), ["reg", "prob"], {0: "n", 2: "h", 3: "w"}),
        "rnet": (RNet, (2, 3, 24, 24), ["reg", "prob"], {0: "n"}),
        "onet": (ONet, (2, 3, 48, 48), ["reg", "landmarks", "prob"], {0: "n"}),
    }
    for name, (cls, shape, outputs, axes) in specs.items():
        net = cls().eval()
        fd, tmp = tempfile.mkstemp(suffix=".onnx.tmp", dir=paths[name].parent)
        os.close(fd)
        try:
            with torch.no_grad():
                torch.onnx.export(
                    net,
                    (torch.zeros(shape),),
                    tmp,
                    input_names=["image"],
                    output_names=outputs,
                    dynamic_axes={"image": axes, **{o: {0: "n"} for o in outputs}},
                    opset_version=OPSET,
                    dynamo=False,
                )
            os.replace(tmp, paths[name])
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
