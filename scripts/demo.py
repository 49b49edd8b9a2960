"""Run `deepdetect-demo` from a checkout: python scripts/demo.py output_dir=outputs/demo"""

from deepdetect.cli.demo import main

if __name__ == "__main__":
    main()
