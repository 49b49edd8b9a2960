"""Run `deepdetect-lofo` from a checkout: python scripts/lofo.py 'recipes_to_run=[sbi]' (see --help)."""

from deepdetect.cli.lofo import main

if __name__ == "__main__":
    main()
