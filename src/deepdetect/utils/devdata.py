"""Locate the development data (`../shared/data` beside the checkout, or `$DEEPDETECT_DEV_DATA`)."""

from __future__ import annotations

import os
from pathlib import Path


def dev_data_dir() -> Path | None:
    """The development data folder, or None when it is absent (tests then skip)."""
    env = os.environ.get("DEEPDETECT_DEV_DATA")
    candidates = [Path(env)] if env else []
    repo = Path(__file__).resolve().parents[3]
    candidates += [repo.parent / "shared" / "data", repo / "shared" / "data", Path.cwd().parent / "shared" / "data"]
    for cand in candidates:
        if (cand / "README.md").is_file():
            return cand.resolve()
    return None
