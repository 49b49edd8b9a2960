"""Locate the development data (`../shared/data` beside the checkout, or `$DEEPDETECT_DEV_DATA`)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any


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


def source_folders(
    data_root: Any, sources: Iterable[tuple[str, Any]], roles: Sequence[str], error: type[ValueError]
) -> dict[str, Path]:
    """Each configured source's input folder (`spec.path` under `data_root`, else the development data); raises
    `error` for a missing data folder, an unknown `spec.role` or a missing source folder."""
    root = Path(str(data_root)).expanduser() if data_root else dev_data_dir()
    if root is None or not root.is_dir():
        raise error(
            f"development data not found at {root}: set DEEPDETECT_DEV_DATA or data_root=PATH (see data/README.md)"
        )
    out: dict[str, Path] = {}
    for name, spec in sources:
        if str(spec.role) not in roles:
            raise error(f"source {name}: role must be one of {tuple(roles)}, got {spec.role!r}")
        path = root / str(spec.path)
        if not path.exists():
            raise error(f"source {name}: {path} not found")
        out[str(name)] = path
    return out
