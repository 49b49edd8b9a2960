"""Run `deepdetect-report` from a checkout: python scripts/report.py predictions.jsonl -o triage.html"""

import sys

from deepdetect.cli.report_triage import main

if __name__ == "__main__":
    sys.exit(main())
