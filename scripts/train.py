"""Run `deepdetect-train` from a checkout: python scripts/train.py key=value ... (see --help)."""

from deepdetect.cli.train import main

if __name__ == "__main__":
    main()
