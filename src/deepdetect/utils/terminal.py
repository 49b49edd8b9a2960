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


class ShownFilter(logging.Filter):
    """A handler filter that escapes each record's message (with its arguments merged in) through `shown`, whatever
    formatter the handler has: how the Hydra commands' console and log-file lines are escaped."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Escape the message in place; never drops a record."""
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: the formatter reports it as logging always does
            return True
        record.msg, record.args = shown(message), None
        return True


def escape_log_handlers() -> None:
    """Put every handler logging has now (the root's and any named logger's, e.g. those Hydra configured from
    `job_logging`) behind a ShownFilter, so every logged name reaches the terminal and the log file escaped."""
    loggers = [logging.getLogger(), *logging.root.manager.loggerDict.values()]
    for logger in loggers:
        for handler in getattr(logger, "handlers", ()):  # placeholders in loggerDict have no handlers
            if not any(isinstance(f, ShownFilter) for f in handler.filters):
                handler.addFilter(ShownFilter())


def shown_lines(text: str) -> str:
    """Multi-line text (a table) with each line escaped by `shown`, its line breaks kept."""
    return "\n".join(shown(line) for line in text.split("\n"))


def cli_logging(level: int) -> None:
    """Log to stderr as `LEVEL message`, messages escaped (`ShownFormatter`): what the argparse commands use."""
    handler = logging.StreamHandler()
    handler.setFormatter(ShownFormatter("%(levelname)s %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])
