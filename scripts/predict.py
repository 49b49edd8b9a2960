import sys

from deepdetect.cli.predict import main

sys.exit(main())
