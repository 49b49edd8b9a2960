"""Every app config composes, and so does every option of every config group an app uses."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import compose_config
from deepdetect.cli._hydra import config_dir

APPS = ("extract", "train", "evaluate", "export", "demo", "reference")
CONFIGS = Path(config_dir())


def _groups_of(app: str) -> dict[str, object]:
    cfg = compose_config(app, ["output_dir=/tmp/x"])
    return {g: c for g, c in cfg.hydra.runtime.choices.items() if not g.startswith("hydra")}


def _cases() -> list[tuple[str, str, str]]:
    cases = []
    for app in APPS:
        if not (CONFIGS / f"{app}.yaml").is_file():
            continue
        for group in _groups_of(app):
            for option in sorted((CONFIGS / group).glob("*.yaml")):
                cases.append((app, group, option.stem))
    return cases


@pytest.mark.parametrize("app", APPS)
def test_app_config_composes(app: str) -> None:
    assert (CONFIGS / f"{app}.yaml").is_file(), f"configs/{app}.yaml is missing"
    cfg = compose_config(app, ["output_dir=/tmp/x"])
    assert cfg.output_dir == "/tmp/x"
    assert cfg.hydra.run.dir == "/tmp/x", "every app writes under output_dir"


@pytest.mark.parametrize(("app", "group", "option"), _cases())
def test_group_option_composes(app: str, group: str, option: str) -> None:
    cfg = compose_config(app, ["output_dir=/tmp/x", f"{group}={option}"])
    assert cfg.hydra.runtime.choices[group] == option


@pytest.mark.parametrize("app", APPS)
def test_debug_fast_overlay_composes(app: str) -> None:
    cfg = compose_config(app, ["output_dir=/tmp/x", "debug=fast"])
    assert cfg.hydra.runtime.choices["debug"] == "fast"
