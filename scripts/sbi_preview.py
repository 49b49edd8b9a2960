"""Run `deepdetect-sbi-preview` from a checkout: python scripts/sbi_preview.py MANIFEST -o grid.png (see --help)."""

import sys

from deepdetect.cli.sbi_preview import main

if __name__ == "__main__":
    sys.exit(main())
