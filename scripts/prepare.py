"""Run `deepdetect-prepare` from a checkout: python scripts/prepare.py"""

import sys

from deepdetect.cli.prepare import main

if __name__ == "__main__":
    sys.exit(main())
