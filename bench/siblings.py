"""Load a benchmark module by its file name: the bench modules are files in this folder, never an installed package.

`bench/run.py` and the benchmarks that reuse another one's setup (`_make_model`, `measure`) import this module
(Python puts the script's folder, `bench/`, first on the path).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent


def load(name: str, folder: Path = HERE) -> ModuleType:
    """The module in `folder/name.py`, executed afresh (FileNotFoundError when there is no such file)."""
    path = folder / f"{name}.py"
    if not path.is_file():
        raise FileNotFoundError(f"no benchmark module {name!r} in {folder}")
    spec = importlib.util.spec_from_file_location(f"_{name}", path)
    if spec is None or spec.loader is None:  # pragma: no cover - a .py path always has a source loader
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
