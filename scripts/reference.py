"""Run `deepdetect-reference` from a checkout: python scripts/reference.py output_dir=outputs/reference"""

from deepdetect.cli.reference import main

if __name__ == "__main__":
    main()
