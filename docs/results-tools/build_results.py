"""Refresh the generated tables of docs/RESULTS.md from the run outputs.

A generated table sits between two markers; the first names the command that prints it (run from the repository
root, `python` meaning this interpreter):

    <!-- generated: python docs/results-tools/overview.py "baseline:photos, videos, crops" ... -->
    | run | ... |
    <!-- end generated -->

Each command only reads outputs under `outputs/`. A block is replaced by the command's output when the command
succeeds and prints at least as many table rows as the block holds; otherwise (outputs absent or incomplete) the
block is kept as it is and the reason printed. Without outputs the page is therefore left unchanged.

Usage: python docs/results-tools/build_results.py [--check]   (--check: write nothing, exit 1 if the page would change)
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PAGE = REPO / "docs" / "RESULTS.md"
BLOCK = re.compile(r"^<!-- generated: (?P<cmd>.+?) -->\n(?P<body>.*?)^<!-- end generated -->$", re.M | re.S)


def rows(text: str) -> int:
    """Number of markdown table rows in `text`."""
    return sum(1 for line in text.splitlines() if line.startswith("|"))


def refresh(cmd: str, body: str) -> tuple[str, str]:
    """The block's new body and what happened to it."""
    args = shlex.split(cmd)
    if args and args[0] == "python":
        args[0] = sys.executable
    proc = subprocess.run(args, cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        return body, f"kept (the command failed: {last})"
    new = proc.stdout if proc.stdout.endswith("\n") else proc.stdout + "\n"
    if rows(new) < rows(body):
        return body, f"kept (the outputs give {rows(new)} table lines, the page holds {rows(body)})"
    return new, "refreshed" if new != body else "unchanged"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    page = PAGE.read_text()
    out, last = [], 0
    for m in BLOCK.finditer(page):
        body, what = refresh(m["cmd"], m["body"])
        print(f"{what}: {m['cmd'][:100]}")
        out += [page[last : m.start("body")], body]
        last = m.end("body")
    new = "".join([*out, page[last:]])
    if new == page:
        print("docs/RESULTS.md unchanged")
        return 0
    if check:
        print("docs/RESULTS.md would change")
        return 1
    PAGE.write_text(new)
    print("wrote docs/RESULTS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
