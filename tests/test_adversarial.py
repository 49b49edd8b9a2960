"""Hostile inputs, one class per section (docs/threat-model.md lists them): what a config, an override, a path list,
a file name or an index file handed over by someone else can make the toolkit do. Each case uses a harmless marker
(a file in tmp_path) where the attack would write or run something, and asserts it never happened."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from deepdetect.utils.config import vet_command_line
from deepdetect.utils.targets import ForbiddenTargetError

# ---------------------------------------------------------------------------------------------------------------
# Configs and overrides: nothing executed, nothing written outside output_dir (utils/targets.py, utils/config.py)


def _hydra_attacks(marker: Path) -> dict[str, list[str]]:
    return {
        "callback": [
            "+hydra.callbacks.x._target_=deepdetect.utils.io.atomic_write_text",
            f"+hydra.callbacks.x.path={marker}",
            "+hydra.callbacks.x.text=pwned",
        ],
        "callback_os_system": ["+hydra.callbacks.x._target_=os.system", f"+hydra.callbacks.x.command='touch {marker}'"],
        "log_file_handler": [
            "+hydra.job_logging.handlers.x.class=logging.FileHandler",
            f"+hydra.job_logging.handlers.x.filename={marker}",
        ],
        "hydra_log_file_handler": [
            "+hydra.hydra_logging.handlers.x.class=logging.FileHandler",
            f"+hydra.hydra_logging.handlers.x.filename={marker}",
        ],
        "log_filter": ["+hydra.job_logging.filters.x.name=a"],
        "log_stream": ["hydra.job_logging.handlers.console.stream=ext://os.system"],
        "log_file_moved": [f"hydra.job_logging.handlers.file.filename={marker}"],
        "handler_class": ["hydra.job_logging.handlers.console.class=logging.handlers.SocketHandler"],
        "launcher": ["hydra.launcher._target_=deepdetect.utils.io.atomic_write_text"],
        "sweeper": ["hydra.sweeper._target_=os.system"],
        "env": ["+hydra.job.env_set.LD_PRELOAD=/tmp/evil.so"],
        "searchpath": ["hydra.searchpath=[pkg://antigravity]"],
        "output_subdir": [f"hydra.output_subdir={marker}"],
        "output_subdir_up": ["hydra.output_subdir=../../x"],
        "run_dir": [f"hydra.run.dir={marker}"],
        "job_name": ["hydra.job.name=../../x"],
        "optimizer_unpickles": ["optimizer._target_=timm.models.load_state_dict", "+optimizer.weights_only=false"],
        "writes_text": ["+_target_=deepdetect.utils.io.atomic_write_text", f"+path={marker}", "+text=x"],
        "scheduler_writes": ["scheduler._target_=deepdetect.data.demo_set.build_demo_set", f"+scheduler.root={marker}"],
    }


@pytest.mark.parametrize("attack", sorted(_hydra_attacks(Path("m"))))
def test_config_attacks_refused_before_hydra_acts(attack: str, tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    with pytest.raises(ForbiddenTargetError) as info:
        vet_command_line("train", [f"output_dir={tmp_path / 'run'}", *_hydra_attacks(marker)[attack]])
    assert "\n" not in str(info.value) and str(info.value).startswith("refusing")
    assert not marker.exists()


def test_config_dir_logging_factory_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    (tmp_path / "hydra" / "job_logging").mkdir(parents=True)
    (tmp_path / "hydra" / "job_logging" / "evil.yaml").write_text(
        "version: 1\nformatters:\n  x:\n    '()': deepdetect.utils.io.atomic_write_text\n"
        f"    path: {marker}\n    text: x\nroot:\n  level: INFO\n",
        encoding="utf-8",
    )
    with pytest.raises(ForbiddenTargetError, match=r"formatters\.x\.\(\)"):
        vet_command_line("train", ["--config-dir", str(tmp_path), "hydra/job_logging=evil"])
    assert not marker.exists()


def test_config_attack_in_one_multirun_job_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ForbiddenTargetError, match=r"os\.system"):
        vet_command_line("train", ["-m", f"output_dir={tmp_path}", "optimizer._target_=torch.optim.SGD,os.system"])


def test_pickled_rerun_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ForbiddenTargetError, match="experimental-rerun"):
        vet_command_line("train", ["--experimental-rerun", str(tmp_path / "config.pickle")])


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["optimizer=sgd", "scheduler=onecycle"],
        ["hydra/job_logging=disabled", "hydra/hydra_logging=hydra_debug", "hydra.verbose=true"],
        ["hydra.job_logging.root.level=DEBUG", "+hydra.job.env_copy=[HOME]"],
        ["-m", "data.cv_fold=0,1,2", "scheduler=cosine,onecycle"],
        ["--cfg", "job"],
    ],
)
def test_ordinary_command_lines_pass(argv: list[str]) -> None:
    vet_command_line("train", argv)


def test_cli_refuses_hydra_callback_and_log_file(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    attack = _hydra_attacks(marker)
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from deepdetect.cli.export import main; main()",
            f"output_dir={tmp_path / 'run'}",
            *attack["log_file_handler"],
            *attack["callback"],
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "refusing hydra." in proc.stderr and "Traceback" not in proc.stderr
    assert not marker.exists() and not (tmp_path / "run").exists()
