"""Crop manifest schema, dataset layouts, splits, datasets and transforms."""

import os

# `import albumentations` (used by transforms and sbi) checks PyPI for a newer release: an outbound connection.
# deepdetect opens none unless asked, so that check is off unless the user set the variable themselves.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
