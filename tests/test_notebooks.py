"""The notebooks execute offline end to end (quickstart builds an evaluation, results_analysis reads it)."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def _kernel_name() -> str:
    """A kernel running this very interpreter (registered for the user when missing or pointing elsewhere)."""
    import hashlib

    from jupyter_client.kernelspec import KernelSpecManager

    here = Path(sys.executable).absolute()  # not resolved: every venv's python links to the same binary
    specs = KernelSpecManager().get_all_specs()
    spec = specs.get("python3")
    if spec and Path(spec["spec"]["argv"][0]).absolute() == here:
        return "python3"
    # one kernel per interpreter: another checkout's venv must never run this checkout's notebooks
    name = "deepdetect-test-" + hashlib.sha256(str(here).encode()).hexdigest()[:10]
    spec = specs.get(name)
    if not spec or Path(spec["spec"]["argv"][0]).absolute() != here:
        from ipykernel.kernelspec import install

        install(user=True, kernel_name=name, display_name="deepdetect (tests)")
    return name


CELL_TIMEOUT_S = 900  # a cell (extraction, training) on 2 busy cores; a hang still fails, well inside CI's budget


def _run(name: str, cwd: Path, env: dict[str, str]) -> None:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        NotebookClient(
            nb, timeout=CELL_TIMEOUT_S, kernel_name=_kernel_name(), resources={"metadata": {"path": str(cwd)}}
        ).execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.mark.slow
def test_notebooks_execute(tmp_path: Path) -> None:
    out = tmp_path / "quick"
    _run("quickstart.ipynb", tmp_path, {"DEEPDETECT_QUICKSTART_OUT": str(out)})
    assert (out / "EV" / "metrics.json").is_file() and (out / "EV" / "report.html").is_file()
    _run("results_analysis.ipynb", tmp_path, {"DEEPDETECT_EV_DIR": str(out / "EV")})


def test_notebooks_are_committed_executed_with_inline_plots() -> None:
    """Fast check of the committed notebooks: executed (outputs saved), plots inline, the quickstart runs the
    five stages as commands, and no output carries a path outside the notebook's own output folder."""
    for name in ("quickstart.ipynb", "results_analysis.ipynb"):
        nb = nbformat.read(NOTEBOOKS / name, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(c.execution_count for c in code), f"{name} is not executed"
        assert not any("matplotlib.use(" in c.source for c in code), name
        images = [o for c in code for o in c.outputs if "image/png" in o.get("data", {})]
        assert images, f"{name} shows no plot"
        errors = [o for c in code for o in c.outputs if o.output_type == "error"]
        assert not errors, name
        markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
        prose = re.sub(r"^```.*?^```", "", markdown, flags=re.M | re.S)  # fenced code: "# comment" is no heading
        broken = [line for line in prose.splitlines() if re.match(r"^\w+#+ ", line)]  # "md# Title" renders as text
        broken += [line for line in prose.splitlines() if re.search(r"\S\s+#{1,6} \w", line)]  # a heading mid-line
        assert not broken, (name, broken)
        headings = [line for line in prose.splitlines() if line.startswith("#")]
        assert all(re.match(r"^#{1,6} \S", h) for h in headings), (name, headings)  # "##Title" renders as text
        assert markdown.lstrip().startswith("# "), name  # each notebook opens with its title heading
    quick = nbformat.read(NOTEBOOKS / "quickstart.ipynb", as_version=4)
    source = "\n".join(c.source for c in quick.cells if c.cell_type == "code")
    for command in ("deepdetect-extract", "deepdetect-train", "deepdetect-evaluate", "deepdetect-export"):
        assert f'sh("{command}"' in source, command
    assert 'sh("deepdetect-predict"' in source
    # beyond the five commands: dataset layouts, a consumer with onnxruntime and its own face boxes (no MTCNN),
    # leave-one-source-out and cross-validation
    for step in ("load_sources(", "session.run(", "model_crop(", "experiment=loso", "data.cv_folds="):
        assert step in source, step
    assert "checker" not in source.lower()  # the demo set's face swaps, not a checkerboard texture
