"""DDP on CPU: two gloo processes train the tiny model; both ranks run, rank 0 alone writes the outputs."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
import torch.multiprocessing as mp
from omegaconf import OmegaConf

from tiny_data import make_tiny_manifest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(rank: int, world: int, port: int, cfg_yaml: str, marker_dir: str) -> None:
    os.environ.update(
        {
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": str(world),
        }
    )
    from deepdetect.training.train import train

    metrics = train(OmegaConf.create(cfg_yaml))
    Path(marker_dir, f"rank{rank}.json").write_text(
        json.dumps({"best": metrics["best"], "epochs": metrics["epochs_run"]})
    )


def test_ddp_two_gloo_processes(cfg_factory, tmp_path: Path) -> None:
    manifest = make_tiny_manifest(tmp_path / "data", missing_test_files=True)
    out = tmp_path / "run"
    cfg = cfg_factory(
        "train",
        ["model=test", "trainer=ddp", "trainer.accelerator=cpu", "trainer.precision=32", "trainer.max_epochs=1",
         f"data.manifest={manifest}", f"output_dir={out}"],
    )  # fmt: skip
    plain = OmegaConf.to_container(cfg, resolve=False)
    assert isinstance(plain, dict)
    plain.pop("hydra")
    markers = tmp_path / "markers"
    markers.mkdir()
    mp.spawn(
        _worker, args=(2, _free_port(), OmegaConf.to_yaml(OmegaConf.create(plain)), str(markers)), nprocs=2, join=True
    )
    results = [json.loads((markers / f"rank{r}.json").read_text()) for r in range(2)]
    assert results[0] == results[1]  # metrics gathered across ranks agree
    assert (out / "metrics.json").is_file() and (out / "model.safetensors").is_file()
    rows = (out / "log.csv").read_text().strip().splitlines()
    assert len(rows) == 2  # header + one epoch, written once (rank 0 only)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["val/n_frames"] == 8  # all val rows scored once across both ranks


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__])
