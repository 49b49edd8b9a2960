"""Config mistakes: a value of the wrong type is one line and exit 2, a failed run leaves no run folder behind,
and each app's --help lists only the config groups it reads."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import compose_config
from deepdetect.data.manifest import ManifestError
from deepdetect.training.train import train
from deepdetect.utils.config_types import ConfigTypeError, check_value_types, type_errors

ROOT = Path(__file__).resolve().parents[1]
APPS = ("train", "evaluate", "extract", "export", "demo", "reference")
EXPERIMENTS = sorted(p.stem for p in (ROOT / "configs" / "experiment").glob("*.yaml"))


def _run_cli(module: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The console script's `main` in a fresh interpreter, importing this checkout's code whatever the cwd."""
    code = f"from deepdetect.cli.{module} import main; main()"
    path = os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": path}
    cmd = [sys.executable, "-c", code, *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=cwd, env=env)


@pytest.mark.slow  # a fresh interpreter imports torch: ~5 s alone, more on a busy machine
def test_wrong_type_on_the_command_line_is_one_line_exit_2_and_writes_no_run(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = _run_cli("train", "trainer.max_epochs=ten", "data.manifest=x.csv", f"output_dir={out}", cwd=tmp_path)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 2, text[-2000:]
    assert "Traceback" not in text
    errors = [line for line in text.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and "trainer.max_epochs=ten (expected an integer, default 10)" in errors[0]
    assert not (out / "config.yaml").exists() and not (out / "checkpoints").exists()


def test_type_errors_follow_the_shipped_defaults() -> None:
    def errors(*overrides: str) -> list[str]:
        cfg = compose_config("train", list(overrides))
        return type_errors(cfg, compose_config("train"))

    assert errors() == []
    assert errors("trainer.max_epochs=3", "optimizer.lr=1", "trainer.patience=null", "data.pos_weight=auto") == []
    assert errors("trainer.max_epochs=2.5") == ["trainer.max_epochs=2.5 (expected an integer, default 10)"]
    assert errors("optimizer.lr=fast")[0].startswith("optimizer.lr=fast (expected a number")
    assert errors("trainer.ema.enabled=yes") == ["trainer.ema.enabled=yes (expected true or false, default True)"]
    cfg = compose_config("evaluate", ["batch_size=big"])
    with pytest.raises(ConfigTypeError, match=r"^bad config value: batch_size=big \(expected an integer"):
        check_value_types(cfg, "evaluate", cfg.hydra.runtime.choices)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_passes_the_type_check(experiment: str) -> None:
    cfg = compose_config("train", [f"experiment={experiment}", "debug=fast"])
    check_value_types(cfg, "train", cfg.hydra.runtime.choices)


def test_a_run_failing_on_its_config_leaves_no_config_or_checkpoints(cfg_factory, tmp_path: Path) -> None:
    out = tmp_path / "run"
    cfg = cfg_factory("train", ["model=test", f"data.manifest={tmp_path / 'missing.csv'}", f"output_dir={out}"])
    with pytest.raises(ManifestError):
        train(cfg)
    assert not (out / "config.yaml").exists() and not (out / "checkpoints").exists()


def _help_groups(template: str) -> dict[str, list[str]]:
    section = template.split("== Config groups (choose with group=option) ==", 1)[1].split("==", 1)[0]
    return {
        g.strip(): [o.strip() for o in opts.split(",")]
        for g, opts in (ln.split(":", 1) for ln in section.split("\n") if ":" in ln)
    }


@pytest.mark.parametrize("app", [a for a in APPS if a != "train"])
def test_help_lists_only_the_groups_the_app_reads(app: str) -> None:
    """The groups in --help are those in the app's defaults list, with every option file of each group."""
    cfg = compose_config(app)
    used = {g for g in cfg.hydra.runtime.choices if not str(g).startswith("hydra")}
    listed = _help_groups(str(cfg.hydra.help.template))
    assert set(listed) == used
    for group, options in listed.items():
        assert options == sorted(p.stem for p in (ROOT / "configs" / group).glob("*.yaml")), group


@pytest.mark.slow  # a fresh interpreter imports torch
def test_evaluate_help_end_to_end(tmp_path: Path) -> None:
    proc = _run_cli("evaluate", "--help", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    groups = _help_groups(proc.stdout)
    assert set(groups) == {"aggregate", "debug", "paths"}
    assert not {"augment", "optimizer", "trainer", "model"} & set(groups)
    assert "deepdetect-evaluate: score a crop manifest" in proc.stdout and "batch_size: 64" in proc.stdout
