"""Shared glue for the argparse entry points: the parser's shape, and bad input as one line on stderr, exit 2."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from deepdetect.utils.jsonlines import OutputWriteError
from deepdetect.utils.terminal import shown


class CommandError(Exception):
    """A problem with what the command was given (a path, an option, a file): one line, exit 2."""


def command_parser(prog: str, description: str, epilog: str) -> argparse.ArgumentParser:
    """An ArgumentParser named `prog` whose epilog (commands, exit status, examples) keeps its line breaks."""
    return argparse.ArgumentParser(
        prog=prog, description=description, epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter
    )


def error_line(prog: str, message: object, status: int = 2) -> int:
    """Print `PROG: error: MESSAGE` (names escaped) as one line on stderr; returns `status`."""
    print(f"{prog}: error: {shown(message)}", file=sys.stderr)
    return status


def run_command(prog: str, run: Callable[[], int], errors: tuple[type[Exception], ...] = ()) -> int:
    """`run()`'s exit status. A write that failed mid-run (disk full: what was written is kept) is one line and
    exit status 1; a CommandError or one of `errors` is one line and exit status 2; never a traceback."""
    try:
        return run()
    except OutputWriteError as exc:
        return error_line(prog, exc, 1)
    except CommandError as exc:
        return error_line(prog, exc)
    except errors as exc:
        return error_line(prog, exc)
