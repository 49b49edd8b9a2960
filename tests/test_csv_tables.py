"""The study's scores, the index's items.csv and the watch report CSV go through the shared table writer and reader
(utils/csvcells frame_csv / read_frame_csv): spreadsheet-safe, every text cell quoted, names read back exactly."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import pandas as pd

from deepdetect.utils.csvcells import read_frame_csv

NOT_UTF8 = os.fsdecode(b"clip\xff.mp4")  # a file name whose bytes are not UTF-8 (kept as a surrogate escape)
FORMULA = '=HYPERLINK("x")'
LONE_CR = "first\rsecond"


def _quoted_cells(text: str) -> list[list[str]]:
    """Each row's raw cells as written, quotes kept (split on commas outside quotes)."""
    reader = csv.reader(io.StringIO(text, newline=""), quoting=csv.QUOTE_NONE, escapechar=None, quotechar="\x00")
    return list(reader)


def test_study_scores_round_trip_exactly(tmp_path: Path) -> None:
    from deepdetect.evaluation.scorefile import read_scores
    from deepdetect.studies.scoring import write_study_scores

    frame = pd.DataFrame(
        {
            # object columns, as read_manifest gives them: Arrow strings cannot hold a name that is not UTF-8
            "crop_path": pd.Series([f"crops/{NOT_UTF8}_f0.png", "crops/b.png"], dtype=object),
            "source_path": pd.Series([NOT_UTF8, FORMULA], dtype=object),
            "label": ["fake", "real"],
            "source": ["lipsync", LONE_CR],
            "method": ["", "-x"],
            "group": ["007", "12"],  # ids that look like numbers stay text
            "video_id": ["v", "w"],
            "frame_index": [0, 3],
            "prob": [0.25, 0.875],
            "logit": [0.0, 1.0],  # not a score column: left out
        }
    )
    path = tmp_path / "families_scores.csv"
    write_study_scores(frame, path)
    back = read_scores(path)
    assert list(back.columns) == [c for c in frame.columns if c != "logit"]
    for col in ("crop_path", "source_path", "label", "source", "method", "group", "video_id"):
        assert back[col].tolist() == frame[col].tolist(), col
    assert back["frame_index"].tolist() == [0, 3] and back["prob"].tolist() == [0.25, 0.875]
    assert "'=HYPERLINK" in path.read_text(encoding="utf-8")  # a spreadsheet shows it, never runs it


def test_index_items_csv_is_quoted_and_round_trips(tmp_path: Path) -> None:
    from deepdetect.hashing.exchange import export_bundle, read_hash_list
    from deepdetect.hashing.index import HashIndex, HashRow, Item

    bits = bytes(range(32))
    items = [
        Item(FORMULA, "image", "-1", [HashRow(0, 0.0, 90, bits)], source=LONE_CR, metadata={"a": 1}),
        Item("007", "image", "ncii", [HashRow(0, 0.0, 80, bytes(32))], sha256="ab" * 32),
    ]
    with HashIndex(tmp_path / "known.db", create=True) as index:
        index.add(items)
        export_bundle(index, tmp_path / "share")
    text = (tmp_path / "share" / "items.csv").read_text(encoding="utf-8")
    assert '"\'-1"' in text and '"ncii"' in text  # every text cell quoted, formulas neutralised
    back = {it.ref: it for it in read_hash_list(tmp_path / "share")}
    assert set(back) == {FORMULA, "007"}
    assert (back[FORMULA].label, back[FORMULA].source, back[FORMULA].metadata) == ("-1", LONE_CR, {"a": 1})
    assert back["007"].sha256 == "ab" * 32 and back["007"].source is None


def test_watch_report_csv_reads_back_exactly(tmp_path: Path) -> None:
    from deepdetect.watch.report import COLUMNS, TEXT_COLUMNS, write_csv

    row = {c: None for c in COLUMNS}
    row.update(case="c1", url="https://example.org/a?x=1", status="live", n_media=2, max_score=0.5, note=FORMULA)
    other = {**row, "url": "https://example.org/b", "note": LONE_CR, "n_media": 0, "max_score": None}
    path = tmp_path / "takedowns.csv"
    write_csv([row, other], path)
    text = path.read_text(encoding="utf-8")
    assert '"\'=HYPERLINK(""x"")"' in text and '"live"' in text
    back = read_frame_csv(path, TEXT_COLUMNS)
    assert list(back.columns) == list(COLUMNS)
    assert back["note"].tolist() == [FORMULA, LONE_CR] and back["n_media"].tolist() == ["2", "0"]
    assert back["max_score"].tolist() == ["0.5", ""] and back["removed_at"].tolist() == ["", ""]
    write_csv([], path)
    assert read_frame_csv(path, TEXT_COLUMNS).empty
