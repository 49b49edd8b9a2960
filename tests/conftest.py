"""Shared fixtures: development data lookup, and composing the real Hydra configs shrunk for tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, open_dict

from deepdetect.cli._hydra import config_dir
from deepdetect.utils.devdata import dev_data_dir

pytest_plugins = ["netguard"]  # no outbound network in any test (tests/netguard.py)


@pytest.fixture(scope="session", autouse=True)
def hub_offline() -> Iterator[None]:
    """Pretrained models load their bundled weights without probing the Hugging Face hub (HF_HUB_OFFLINE=1)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("HF_HUB_OFFLINE", "1")
    yield
    mp.undo()


@pytest.fixture(scope="session", autouse=True)
def mtcnn_onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """MTCNN's ONNX files (the ONNX Runtime detector's) go to a folder of the test session, not the user's cache."""
    mp = pytest.MonkeyPatch()
    path = tmp_path_factory.mktemp("cache")
    mp.setenv("DEEPDETECT_CACHE_DIR", str(path))
    yield path
    mp.undo()


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """One torch thread for a module's MTCNN tests: much faster than several on a busy shared CPU
    (bench/bench_mtcnn.py); use with `pytestmark = pytest.mark.usefixtures("one_torch_thread")`."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def dev_data() -> Path:
    """Path of ../shared/data; skips the test when the development data is absent."""
    path = dev_data_dir()
    if path is None:
        pytest.skip("development data not found: set DEEPDETECT_DEV_DATA or place it at ../shared/data")
    return path


def compose_config(config_name: str, overrides: list[str] | None = None) -> DictConfig:
    """Compose `configs/<config_name>.yaml` with overrides, as the CLI would (without running it)."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        return compose(config_name=config_name, overrides=overrides or [], return_hydra_config=True)


@pytest.fixture
def cfg_factory(tmp_path: Path) -> Iterator[object]:
    """Compose an app config with `debug=fast` and output under tmp_path; returns a callable."""

    def make(config_name: str, overrides: list[str] | None = None, fast: bool = True) -> DictConfig:
        ov = list(overrides or [])
        if fast and not any(o.startswith("debug=") for o in ov):
            ov.append("debug=fast")
        if not any(o.startswith("output_dir=") for o in ov):
            ov.append(f"output_dir={tmp_path / config_name}")
        cfg = compose_config(config_name, ov)
        with open_dict(cfg):
            from hydra.core.hydra_config import HydraConfig

            HydraConfig.instance().set_config(cfg)
        return cfg

    yield make
    GlobalHydra.instance().clear()
