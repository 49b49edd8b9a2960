"""Run `deepdetect-export` from a checkout: python scripts/export.py key=value ... (see --help)."""

from deepdetect.cli.export import main

if __name__ == "__main__":
    main()
