"""What a config may build: each group names only its listed callables (exact names), every other `_target_` is
refused at the config edge (exit 2) before anything is instantiated; the toolkit's own configs pass."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hydra.utils import get_method
from omegaconf import OmegaConf

from deepdetect.utils.config import compose_stage, config_dir
from deepdetect.utils.targets import (
    GROUP_TARGETS,
    ForbiddenTargetError,
    check_config,
    check_targets,
    instantiate_group,
    target_allowed,
)

LISTED = [(group, name) for group, names in GROUP_TARGETS.items() for name in names]


def _shipped_targets() -> list[tuple[str, str, str]]:
    """(group, option, target) for every `_target_` written in the shipped configs."""
    found = []
    for path in sorted(Path(config_dir()).rglob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        if "_target_" in text:
            data = yaml.safe_load(text)
            if "_target_" in data:  # a group option (train.yaml's hydra callback is checked below)
                found.append((path.parent.name, path.stem, data["_target_"]))
    return found


@pytest.mark.parametrize(("group", "name"), LISTED)
def test_listed_targets_exist_and_are_allowed(group: str, name: str) -> None:
    assert callable(get_method(name))
    assert target_allowed(f"{group}._target_", name)


def test_every_shipped_target_is_listed_for_its_group() -> None:
    shipped = _shipped_targets()
    assert {g for g, _, _ in shipped} == set(GROUP_TARGETS)
    for group, option, target in shipped:
        assert target in GROUP_TARGETS[group], (group, option, target)


@pytest.mark.parametrize(("group", "option", "target"), _shipped_targets())
def test_every_shipped_option_composes_and_passes(group: str, option: str, target: str) -> None:
    cfg = compose_stage("train", [f"{group}={option}"])
    assert cfg[group]["_target_"] == target
    check_config(cfg)


@pytest.mark.parametrize(
    ("where", "target"),
    [
        ("optimizer._target_", "torch.load"),
        ("optimizer._target_", "timm.models.load_state_dict"),  # unpickles a file with weights_only=False
        ("optimizer._target_", "deepdetect.training.optim.warmup_cosine"),  # a scheduler, not an optimizer
        ("scheduler._target_", "deepdetect.data.demo_set.build_demo_set"),  # writes files
        ("scheduler._target_", "torch.optim.AdamW"),
        ("model._target_", "timm.create_model"),  # a group that names no callable
        ("augment._target_", "albumentations.HorizontalFlip"),
        ("_target_", "deepdetect.utils.io.atomic_write_text"),
        ("optimizer.lr._target_", "torch.optim.AdamW"),  # nested: only the group's own node may name one
        ("optimizer._target_", "torch.optim.AdamW "),
        ("optimizer._target_", 42),
    ],
)
def test_refused_targets(where: str, target: object) -> None:
    assert not target_allowed(where, target)


@pytest.mark.parametrize("config", ["train", "evaluate", "extract", "export", "demo", "reference"])
def test_shipped_configs_pass(config: str) -> None:
    check_config(compose_stage(config, []))


def test_refusal_names_group_and_allowed_names() -> None:
    with pytest.raises(ForbiddenTargetError) as info:
        compose_stage("train", ["optimizer._target_=timm.models.load_state_dict"])
    message = str(info.value)
    assert "\n" not in message and "config group 'optimizer'" in message
    assert all(name in message for name in GROUP_TARGETS["optimizer"])


def test_nested_override_is_refused() -> None:
    with pytest.raises(ForbiddenTargetError, match=r"optimizer\.lr\._target_='torch\.load'"):
        compose_stage("train", ["optimizer.lr={_target_:torch.load,f:evil.pth,weights_only:false}"])


@pytest.mark.parametrize("key", ["_args_", "_recursive_", "_convert_"])
def test_other_instantiate_keys_are_refused(key: str) -> None:
    with pytest.raises(ForbiddenTargetError, match=f"optimizer.{key}"):
        check_targets(OmegaConf.create({"optimizer": {"_target_": "torch.optim.AdamW", key: []}}))


def test_instantiate_group_checks_before_building(tmp_path: Path) -> None:
    marker = tmp_path / "written"
    node = OmegaConf.create({"_target_": "deepdetect.utils.io.atomic_write_text", "path": str(marker), "text": "x"})
    with pytest.raises(ForbiddenTargetError):
        instantiate_group("optimizer", node)
    assert not marker.exists()
    built = instantiate_group("optimizer", OmegaConf.create({"_target_": "torch.optim.SGD", "_partial_": True}))
    assert callable(built)


def test_cli_exits_2_and_runs_nothing(tmp_path: Path) -> None:
    """The wrapper every Hydra entry point is made with (deepdetect-train is `hydra_main("train", train_task)`)."""
    marker = tmp_path / "PWNED"
    task = f"lambda cfg: open({str(tmp_path / 'ran')!r}, 'w')"
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            f"from deepdetect.cli._hydra import hydra_main; hydra_main('train', {task})()",
            f"output_dir={tmp_path / 'run'}",
            f'optimizer.lr={{_target_:builtins.exec,_args_:[\'open("{marker}","w")\']}}',
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "refusing optimizer.lr._target_='builtins.exec'" in proc.stderr + proc.stdout
    assert not marker.exists() and not (tmp_path / "ran").exists() and "Traceback" not in proc.stderr


def test_only_the_shipped_hydra_callback_is_allowed() -> None:
    from deepdetect.utils.targets import HYDRA_CALLBACKS, ForbiddenTargetError, check_hydra_section

    shipped = yaml.safe_load((Path(config_dir()) / "train.yaml").read_text(encoding="utf-8"))["hydra"]["callbacks"]
    assert {k: v["_target_"] for k, v in shipped.items()} == HYDRA_CALLBACKS
    check_hydra_section({"callbacks": shipped})
    for bad in (
        {"cv_summary": {"_target_": "builtins.open"}},
        {"x": {"_target_": "deepdetect.training.cv.CvSummary"}},
        {"cv_summary": {"_target_": "deepdetect.training.cv.CvSummary", "file": "/tmp/x"}},
    ):
        with pytest.raises(ForbiddenTargetError, match="callbacks"):
            check_hydra_section({"callbacks": bad})
