"""Run `deepdetect-extract` from a checkout: python scripts/extract.py key=value ... (see --help)."""

from deepdetect.cli.extract import main

if __name__ == "__main__":
    main()
