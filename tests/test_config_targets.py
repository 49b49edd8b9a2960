"""Issue 12 item 11: a `_target_` outside the allow-list is refused at the config edge (exit 2), before anything
is instantiated; the toolkit's own configs pass."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from deepdetect.utils.config import compose_stage
from deepdetect.utils.targets import ForbiddenTargetError, check_targets, target_allowed


@pytest.mark.parametrize(
    "target",
    [
        "torch.optim.AdamW",
        "torch.optim.lr_scheduler.OneCycleLR",
        "deepdetect.training.optim.warmup_cosine",
        "albumentations.HorizontalFlip",
    ],
)
def test_allowed_targets(target: str) -> None:
    assert target_allowed(target)


@pytest.mark.parametrize(
    "target",
    [
        "torch.load",
        "os.system",
        "builtins.exec",
        "deepdetect.models.checkpoint.torch.load",  # a re-export of torch.load through an allowed package
        "deepdetect.models.checkpoint.pickle.loads",
        "torch.optim.__builtins__",
        "torch.optimizer_evil.X",
        42,
    ],
)
def test_refused_targets(target: object) -> None:
    assert not target_allowed(target)


@pytest.mark.parametrize("config", ["train", "evaluate", "extract", "export", "demo"])
def test_shipped_configs_pass(config: str) -> None:
    check_targets(compose_stage(config, []))


def test_nested_override_is_refused() -> None:
    with pytest.raises(ForbiddenTargetError, match=r"optimizer\.lr\._target_='torch\.load'"):
        compose_stage("train", ["optimizer.lr={_target_:torch.load,f:evil.pth,weights_only:false}"])


def test_cli_exits_2_and_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "deepdetect.cli.train",
            f"output_dir={tmp_path / 'run'}",
            f'optimizer.lr={{_target_:builtins.exec,_args_:[\'open("{marker}","w")\']}}',
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "refusing optimizer.lr._target_='builtins.exec'" in proc.stderr + proc.stdout
    assert not marker.exists() and "Traceback" not in proc.stderr
