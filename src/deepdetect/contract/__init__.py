"""The model contract: what a trained detector needs to be used correctly, as one typed object (ground floor:
imports nothing else from deepdetect)."""

from deepdetect.contract.card import Calibration, FaceCrop, ModelCard, OperatingPoint, Preprocess
from deepdetect.contract.checks import ContractValueError, check_contract_values

__all__ = [
    "Calibration",
    "ContractValueError",
    "FaceCrop",
    "ModelCard",
    "OperatingPoint",
    "Preprocess",
    "check_contract_values",
]
