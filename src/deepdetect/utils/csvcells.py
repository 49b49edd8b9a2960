"""Spreadsheet-safe CSV cells: a text cell that a spreadsheet would run as a formula gets a leading `'`.

Cells starting with `= + - @`, a tab or a carriage return are prefixed with `'` (the spreadsheet "text" marker,
which spreadsheets do not display). Cells already starting with `'` get one too, so `restore_cell` (drop one
leading `'`) undoes `neutralise_cell` exactly: the toolkit reads back the very text it wrote.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from deepdetect.utils.paths import printable_text

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


def _is_text(series: pd.Series) -> bool:
    return series.dtype == object or pd.api.types.is_string_dtype(series.dtype)
