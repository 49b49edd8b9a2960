"""Run `deepdetect-hash` from a checkout: python scripts/hash.py photo.jpg clip.mp4"""

import sys

from deepdetect.cli.hash import main

if __name__ == "__main__":
    sys.exit(main())
