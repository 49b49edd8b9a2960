"""deepdetect: a research toolkit for deepfake detection."""

__version__ = "0.1.0"

__all__ = ["__version__"]
