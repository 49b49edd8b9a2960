"""Run `deepdetect-train` from a checkout: python scripts/train.py data.manifest=... output_dir=..."""

from deepdetect.cli.train import main

main()
