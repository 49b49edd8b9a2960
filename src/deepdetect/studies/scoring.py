"""What a recipe hands the leave-one-family-out table: its calibrated frame probabilities and its threshold."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd


@dataclass
class Scored:
    """A trained recipe's calibrated frame probabilities on the families and unseen reals, and its threshold."""

    families: pd.DataFrame
    unseen: pd.DataFrame
    threshold: float
    seconds: float
    experts: dict[str, Any] = field(default_factory=dict)
