"""Imports of libraries that would otherwise phone home: deepdetect opens no connection unless asked."""

from __future__ import annotations

import os
from types import ModuleType


def import_albumentations() -> ModuleType:
    """`import albumentations` with its PyPI update check off (unless the user set NO_ALBUMENTATIONS_UPDATE)."""
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    import albumentations

    return albumentations
