"""Run `deepdetect-evaluate-records` from a checkout: python scripts/evaluate_records.py RECORDS --labels CSV."""

import sys

from deepdetect.cli.evaluate_records import main

if __name__ == "__main__":
    sys.exit(main())
