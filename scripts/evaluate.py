"""Run `deepdetect-evaluate` from a checkout: python scripts/evaluate.py key=value ... (see --help)."""

from deepdetect.cli.evaluate import main

if __name__ == "__main__":
    main()
