"""Run `deepdetect-index` from a checkout: python scripts/index.py match --help"""

import sys

from deepdetect.cli.index import main

if __name__ == "__main__":
    sys.exit(main())
