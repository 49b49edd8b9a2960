"""Run `deepdetect-watch` from a checkout: python scripts/watch.py check --help"""

import sys

from deepdetect.cli.watch import main

if __name__ == "__main__":
    sys.exit(main())
