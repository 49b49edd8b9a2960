"""Spreadsheet-safe CSV cells: a text cell that a spreadsheet would run as a formula gets a leading `'`.

Cells starting with `= + - @`, a tab or a carriage return are prefixed with `'` (the spreadsheet "text" marker,
which spreadsheets do not display). Cells already starting with `'` get one too, so `restore_cell` (drop one
leading `'`) undoes `neutralise_cell` exactly: the toolkit reads back the very text it wrote.

Tables (`frame_csv` / `read_frame_csv`) quote every text cell, so a name holding a lone carriage return (which a
CSV reader takes for a line end unless it is quoted) stays one cell; cells that are not UTF-8 (file names kept as
surrogate escapes) are written readable, as `\\xNN`, with their exact bytes in a `<column>_b64` column, so a name
with byte 0xFF and a name spelling a literal backslash-x-f-f read back as the two different names they are.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from deepdetect.utils.paths import path_bytes_b64, path_from_b64, printable_text

B64_SUFFIX = "_b64"  # `<column>_b64`: base64 of a cell's exact bytes when they are not UTF-8, else empty

if TYPE_CHECKING:  # pandas is imported where a table is built or read: the record writers need only the cells
    import pandas as pd

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "'")


def neutralise_cell(value: str) -> str:
    """`'` + value when a spreadsheet could read it as a formula (or it starts with `'`), else value."""
    return "'" + value if value.startswith(FORMULA_PREFIXES) else value


def restore_cell(value: str) -> str:
    """Inverse of `neutralise_cell`."""
    return value[1:] if value.startswith("'") else value


def text_cell(value: object) -> object:
    """A CSV value made safe: text neutralised and valid UTF-8 (undecodable name bytes as `\\xNN`); others as is."""
    if not isinstance(value, str):
        return value
    return neutralise_cell(printable_text(value))


def neutralise_frame(frame: pd.DataFrame, columns: Iterable[str] | None = None) -> pd.DataFrame:
    """A copy with the text cells of `columns` (default: every object/string column) made safe by `text_cell`."""
    out = frame.copy()
    cols = list(columns) if columns is not None else [c for c in out.columns if _is_text(out[c])]
    for col in cols:
        if col in out.columns:
            out[col] = out[col].map(text_cell).astype(object)
    return out


def restore_frame(frame: pd.DataFrame, columns: Iterable[str]) -> pd.DataFrame:
    """Undo `neutralise_frame` on the given text columns of a frame read back with `dtype=str`."""
    out = frame.copy()
    for col in columns:
        if col in out.columns:
            out[col] = out[col].map(lambda v: restore_cell(v) if isinstance(v, str) else v)
    return out


def exact_bytes_column(values: Iterable[object]) -> list[str]:
    """Base64 of each value's bytes when it is a name that is not UTF-8 (surrogate escapes), else ""."""
    out = []
    for value in values:
        try:
            out.append(path_bytes_b64(value) or "" if isinstance(value, str) else "")
        except UnicodeEncodeError:  # a lone surrogate that no file name can hold: it is written escaped
            out.append("")
    return out


def frame_csv(frame: pd.DataFrame, text_columns: Iterable[str] | None = None, exact_columns: Sequence[str] = ()) -> str:
    """CSV text of `frame`: `text_columns` (default: every text column) spreadsheet-safe, every text cell quoted (a
    lone CR stays in its cell), and a `<column>_b64` column after the others for each of `exact_columns` (see the
    module docstring)."""
    import pandas as pd

    out = frame.copy()
    text = list(text_columns) if text_columns is not None else [c for c in out.columns if _is_text(out[c])]
    for col in exact_columns:
        out[col + B64_SUFFIX] = pd.Series(exact_bytes_column(frame[col]), index=frame.index, dtype=object)
    out = neutralise_frame(out, [*text, *(c + B64_SUFFIX for c in exact_columns)])  # base64 may start "+"
    return str(out.to_csv(index=False, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n"))


def read_frame_csv(
    source: str | os.PathLike[str] | io.StringIO, text_columns: Iterable[str], exact_columns: Sequence[str] = ()
) -> pd.DataFrame:
    """Inverse of `frame_csv`: every column as text, text cells restored, exact bytes put back from `<col>_b64`.

    Raises `pd.errors.ParserError` or `UnicodeDecodeError` for a file that is not such a CSV.
    """
    import pandas as pd

    raw = pd.read_csv(source, dtype=str, keep_default_na=False)
    raw = restore_frame(raw, [*text_columns, *(c + B64_SUFFIX for c in exact_columns)])
    for col in exact_columns:
        b64 = col + B64_SUFFIX
        if col in raw.columns and b64 in raw.columns:
            exact = [path_from_b64(e) if e else v for v, e in zip(raw[col], raw[b64], strict=True)]
            raw[col] = pd.Series(exact, index=raw.index, dtype=object)
    return raw


def _is_text(series: pd.Series) -> bool:
    import pandas as pd

    return series.dtype == object or pd.api.types.is_string_dtype(series.dtype)
