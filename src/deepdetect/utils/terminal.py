"""Text for the terminal: file names (and any text holding one) shown with their control characters escaped, so a
hostile name cannot recolour, move or rewrite what a command prints; log lines go through the same helper."""

from __future__ import annotations

import logging
import os
import unicodedata

# Unicode categories never shown raw on a terminal: controls (C0 with ESC, DEL, C1), format characters (bidi
# overrides that reorder a line), surrogates (undecodable name bytes), private use, line and paragraph separators.
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})


def shown(value: object) -> str:
    """`value` as text safe to print on a terminal: every character that could move the cursor, recolour, retitle
    or reorder the output (ANSI escape sequences start with ESC), or hide in it, as a visible escape (`\\x1b`,
    `\\u202e`), and a name's undecodable bytes as `\\xNN`. Every command prints file
    names (and its log lines) through this."""
    text = os.fsdecode(value) if isinstance(value, bytes) else str(value)
    if text.isprintable():
        return text
    out = []
    for ch in text:
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:  # a byte that is not UTF-8, kept by surrogateescape
            out.append(f"\\x{code - 0xDC00:02x}")
        elif unicodedata.category(ch) in _HIDDEN_CATEGORIES:
            out.append(f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        else:
            out.append(ch)
    return "".join(out)


class ShownFormatter(logging.Formatter):
    """A log formatter whose message part goes through `shown` (a traceback, if any, is left as Python wrote it)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        """The formatted message line, escaped."""
        return shown(super().formatMessage(record))


def cli_logging(level: int) -> None:
    """Log to stderr as `LEVEL message`, messages escaped (`ShownFormatter`): what the argparse commands use."""
    handler = logging.StreamHandler()
    handler.setFormatter(ShownFormatter("%(levelname)s %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])
