"""Training throughput: end-to-end images/s (crops, augmentation, loader) / raw model-step images/s, same model."""

from __future__ import annotations

import contextlib
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from PIL import Image

from deepdetect.data.dataset import CropDataset
from deepdetect.data.sampling import EpochSampler
from deepdetect.data.transforms import build_transforms
from deepdetect.models.detector import create_detector, resolve_preprocess
from deepdetect.utils.devdata import dev_data_dir

AUGMENT_LIGHT = Path(__file__).resolve().parents[1] / "configs" / "augment" / "light.yaml"


def _crops(folder: Path, n: int, size: int) -> pd.DataFrame:
    """n crops as PNG under folder: gan-faces images resized when available, else synthetic noise images."""
    data = dev_data_dir()
    files = sorted((data / "gan-faces" / "real").glob("*.jpg"))[: n // 2] if data else []
    files += sorted((data / "gan-faces" / "fake").glob("*.jpg"))[: n - len(files)] if data else []
    rows = []
    rng = np.random.default_rng(0)
    for i in range(n):
        if i < len(files):
            img = Image.open(files[i]).convert("RGB").resize((size, size))
        else:
            img = Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8))
        path = folder / f"{i:04d}.jpg"
        img.save(path, quality=90)
        label = "fake" if (i < len(files) and "fake" in str(files[i])) or (i >= len(files) and i % 2) else "real"
        rows.append(
            {"abs_crop_path": str(path), "label": label, "video_id": f"v{i}", "source": "bench", "landmarks": ""}
        )
    return pd.DataFrame(rows)


def _step(model: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, amp: Any) -> None:
    with amp:
        loss = F.binary_cross_entropy_with_logits(model(x).float(), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _raw_rate(
    model: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, n: int, amp: Any
) -> float:
    _sync(x.device)
    t0 = time.perf_counter()
    for _ in range(n):
        _step(model, opt, x, y, amp)
    _sync(x.device)
    return len(y) * n / (time.perf_counter() - t0)


def _to(x: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    x = x.to(device, non_blocking=True)
    return x.contiguous(memory_format=torch.channels_last) if channels_last and x.ndim == 4 else x


def measure(
    device: str = "cpu",
    model_name: str = "test_efficientnet",
    size: int = 128,
    batch: int = 16,
    precision: str = "32",
    channels_last: bool = False,
    workers: int = 2,
    n_batches: int = 30,
) -> dict[str, Any]:
    """End-to-end training images/s (JPEG crops -> augmentation -> DataLoader -> step) over the raw step rate.

    The raw rate steps on one batch already on the device; the end-to-end rate decodes and augments real crops
    (gan-faces when the dev data is there) with the toolkit's dataset, transforms and sampler. A ratio near 1
    means the loader keeps the model fed.
    """
    dev = torch.device(device)
    torch.manual_seed(0)
    model = create_detector(model_name).to(dev)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    pre = resolve_preprocess(model, size)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model.train()
    dtype = {"bf16": torch.bfloat16, "16": torch.float16}.get(precision)
    amp: Any = torch.autocast(dev.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()
    x = _to(torch.randn(batch, 3, size, size), dev, channels_last)
    y = torch.randint(0, 2, (batch,)).float().to(dev)
    _step(model, opt, x, y, amp)
    raw = _raw_rate(model, opt, x, y, n_batches, amp)
    with tempfile.TemporaryDirectory() as tmp:
        frame = _crops(Path(tmp), batch * (n_batches + 1), max(300, size + 32))
        train_tf, _ = build_transforms(OmegaConf.load(AUGMENT_LIGHT), pre)
        ds = CropDataset(frame, train_tf)
        loader = torch.utils.data.DataLoader(
            ds,
            batch_size=batch,
            sampler=EpochSampler(frame),
            num_workers=workers,
            drop_last=True,
            prefetch_factor=4,
            pin_memory=dev.type == "cuda",
        )
        it = iter(loader)
        xb, yb, _ = next(it)  # warm-up: workers started
        _step(model, opt, _to(xb, dev, channels_last), yb.to(dev), amp)
        _sync(dev)
        t0 = time.perf_counter()
        seen = 0
        for xb, yb, _ in it:
            _step(model, opt, _to(xb, dev, channels_last), yb.to(dev), amp)
            seen += len(yb)
        _sync(dev)
        e2e = seen / (time.perf_counter() - t0)
    raw = max(raw, _raw_rate(model, opt, x, y, n_batches, amp))  # measured before and after: the CPU is shared
    return {
        "device": device,
        "model": model_name,
        "input_size": size,
        "batch_size": batch,
        "precision": precision,
        "channels_last": channels_last,
        "num_workers": workers,
        "augment": "light",
        "raw_step_images_per_s": round(raw, 2),
        "end_to_end_images_per_s": round(e2e, 2),
        "ratio": round(e2e / raw, 3),
    }


def run(out_dir: Path, quick: bool) -> dict[str, Any]:
    """Ratio of end-to-end training throughput to raw model-step throughput on CPU (fp32, test_efficientnet 128 px)."""
    del out_dir
    return measure(n_batches=6 if quick else 30)
