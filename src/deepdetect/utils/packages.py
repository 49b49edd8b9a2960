"""Files shipped inside installed packages (model weights, predictor files), found without importing the package."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def package_dir(name: str) -> Path | None:
    """The folder of the installed package `name`, or None when it is not installed (or is a plain module).

    `find_spec` locates the package without running its `__init__` (some of those import heavy or missing
    libraries just to tell where their data lies)."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):  # a dotted name whose parent is missing, or an empty name
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))
