"""Run `deepdetect-predict` from a checkout: python scripts/predict.py PATH... --model MODEL (see --help)."""

import sys

from deepdetect.cli.predict import main

if __name__ == "__main__":
    sys.exit(main())
