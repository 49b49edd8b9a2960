"""Write the leave-one-family-out section of docs/RESULTS.md from families.json (never edited by hand).

python -m deepdetect.studies.table docs/results/families.json docs/RESULTS.md
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

from deepdetect.studies.lofo import write_results_section


def main(argv: Sequence[str] | None = None) -> int:
    """Regenerate the table between the markers of RESULTS.md; exit 2 when the JSON is missing or not a list."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        print("usage: python -m deepdetect.studies.table FAMILIES_JSON RESULTS_MD", file=sys.stderr)
        return 2
    src, dst = Path(args[0]), Path(args[1])
    try:
        rows = json.loads(src.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        print(f"error: cannot read {src}: {exc}", file=sys.stderr)
        return 2
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        print(f"error: {src} must hold a list of rows", file=sys.stderr)
        return 2
    write_results_section(dst, rows)
    print(f"wrote the families table ({len(rows)} rows) into {dst}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
