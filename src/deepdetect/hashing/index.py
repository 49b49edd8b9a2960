"""The known-content index: a SQLite file of hashes, labels and metadata (never media).

One row per known item (an image, or a video with its frame hashes) in `items`, its hashes in `hashes`. Writers
take SQLite's write lock for the whole of each call (`BEGIN IMMEDIATE`, waiting up to `busy_timeout_s`), so two
processes adding at once both land. A file that is not a deepdetect index (corrupt, truncated, another database)
raises `IndexFileError` with a clear message; opening a missing file for reading never creates an empty index.

An index file someone hands over is input too: it is opened read-only until the first write, only a regular file is
opened, its schema must be exactly the one written here (no views, triggers or other tables), SQLite runs with
`trusted_schema=OFF`, and values the toolkit never writes (a hash of the wrong size, a huge integer, nested JSON)
raise IndexFileError rather than escaping as another error; `verify()` checks every row as well as every page.
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
import sqlite3
import time
import urllib.parse
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deepdetect.hashing.pdq import HASH_BYTES
from deepdetect.utils.io import open_regular

APPLICATION_ID = 0x44444858  # "DDHX", in the SQLite header: identifies a deepdetect hash index
SCHEMA_VERSION = 1
KINDS = ("image", "video")

_SCHEMA = """
CREATE TABLE items (
    id INTEGER PRIMARY KEY,
    ref TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('image', 'video')),
    label TEXT NOT NULL,
    sha256 TEXT,
    duration_s REAL,
    source TEXT,
    added_at TEXT NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE hashes (
    item_id INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    frame_index INTEGER NOT NULL DEFAULT 0,
    timestamp REAL NOT NULL DEFAULT 0,
    quality INTEGER NOT NULL,
    role TEXT NOT NULL DEFAULT 'frame' CHECK (role IN ('frame', 'face')),
    hash BLOB NOT NULL CHECK (length(hash) = 32)
);
CREATE INDEX hashes_item ON hashes(item_id);
CREATE INDEX items_sha256 ON items(sha256);
"""


MAX_FRAME_INDEX = 2**31 - 1
MAX_TEXT = 4096  # ref, label, source, sha256: characters
MAX_METADATA = 1 << 20  # metadata JSON: characters
# Values SQLite or numpy cannot hold, or nested JSON, found in a file: reported as IndexFileError.
_VALUE_ERRORS = (ValueError, TypeError, OverflowError, RecursionError, KeyError, UnicodeError)


class IndexFileError(Exception):
    """The index file is missing, corrupt, locked too long, or not a deepdetect hash index."""


@functools.cache
def _expected_schema() -> frozenset[tuple[str, str, str, str]]:
    """(type, name, table, normalised SQL) of every schema object a new index holds."""
    conn = sqlite3.connect(":memory:")
    try:
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        return frozenset(_schema_rows(conn))
    finally:
        conn.close()


def _schema_rows(conn: sqlite3.Connection) -> list[tuple[str, str, str, str]]:
    rows = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall()
    return [(str(t), str(n), str(tb), re.sub(r"\s+", " ", str(sql or "")).strip()) for t, n, tb, sql in rows]


def check_item(item: Item, metadata: bool = True) -> None:
    """Raise ValueError when an item holds a value the index does not store (bad kind, empty or over-long text,
    a hash of the wrong size, a frame index, quality or time out of range, metadata that is not a small object;
    `metadata=False` skips the size of the metadata, checked on its text when read)."""
    if item.kind not in KINDS:
        raise ValueError(f"item kind must be one of {KINDS}, got {item.kind!r}")
    if not item.hashes:
        raise ValueError(f"item {item.ref!r} has no hashes")
    for name, value in (("ref", item.ref), ("label", item.label)):
        if not isinstance(value, str) or not value or any(c in value for c in ",\r\n"):
            raise ValueError(f"{name} must be non-empty text without commas or newlines: {value!r}"[:300])
    texts: tuple[tuple[str, str | None], ...] = (
        ("ref", item.ref),
        ("label", item.label),
        ("source", item.source),
        ("sha256", item.sha256),
    )
    for name, text in texts:
        if text is not None and (not isinstance(text, str) or len(text) > MAX_TEXT):
            raise ValueError(f"{name} of {item.ref[:100]!r} must be text of at most {MAX_TEXT} characters")
    if item.duration_s is not None and not (
        isinstance(item.duration_s, float | int) and math.isfinite(item.duration_s)
    ):
        raise ValueError(f"duration of {item.ref[:100]!r} must be a finite number, got {item.duration_s!r}")
    if not isinstance(item.metadata, dict) or (metadata and len(json.dumps(item.metadata)) > MAX_METADATA):
        raise ValueError(f"metadata of {item.ref[:100]!r} must be a JSON object of at most {MAX_METADATA} characters")
    for h in item.hashes:
        if not isinstance(h.bits, bytes) or len(h.bits) != HASH_BYTES:
            raise ValueError(f"hash of {item.ref[:100]!r} is {len(h.bits)} bytes, expected {HASH_BYTES}")
        if not 0 <= h.frame_index <= MAX_FRAME_INDEX or not 0 <= h.quality <= 100 or not math.isfinite(h.timestamp):
            raise ValueError(
                f"hash of {item.ref[:100]!r}: frame {h.frame_index}, quality {h.quality}, time {h.timestamp} out of "
                f"range (frame 0..{MAX_FRAME_INDEX}, quality 0..100, finite time)"
            )
        if h.role not in ("frame", "face"):
            raise ValueError(f"hash role must be frame or face, got {h.role!r}")


@dataclass(frozen=True)
class HashRow:
    """One stored hash: a frame of a video (or the image itself, frame 0), or a face crop (`role='face'`)."""

    frame_index: int
    timestamp: float
    quality: int
    bits: bytes
    role: str = "frame"


@dataclass
class Item:
    """A known piece of content: its reference id, label, hashes and metadata."""

    ref: str
    kind: str
    label: str
    hashes: list[HashRow]
    sha256: str | None = None
    duration_s: float | None = None
    source: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    id: int | None = None

    @classmethod
    def from_record(cls, rec: dict[str, Any], label: str, ref: str | None = None, source: str | None = None) -> Item:
        """An item from an ok hash record (`deepdetect-hash` output); `ref` defaults to the file's sha256."""
        if rec.get("status") != "ok":
            raise ValueError(f"cannot index {rec.get('path')}: status {rec.get('status')} ({rec.get('error')})")
        from deepdetect.hashing.pdq import from_hex

        if rec["kind"] == "image":
            hashes = [HashRow(0, 0.0, int(rec["quality"]), from_hex(rec["pdq"]))]
        else:
            hashes = [
                HashRow(int(f["frame_index"]), float(f["timestamp"]), int(f["quality"]), from_hex(f["pdq"]))
                for f in rec["frames"]
            ]
        hashes += [
            HashRow(int(f["frame_index"]), 0.0, int(f["quality"]), from_hex(f["pdq"]), "face")
            for f in rec.get("faces") or []
        ]
        ref = ref or rec.get("sha256") or Path(rec["path"]).name
        return cls(ref, rec["kind"], label, hashes, rec.get("sha256"), rec.get("duration_s"), source)


@dataclass(frozen=True)
class HashTable:
    """Every stored hash as arrays, for building a searcher: row i of `codes` belongs to item `item_ids[i]`."""

    codes: np.ndarray  # (N, 32) uint8
    item_ids: np.ndarray  # (N,) int64
    frame_index: np.ndarray
    timestamp: np.ndarray
    quality: np.ndarray
    is_face: np.ndarray  # (N,) bool


class HashIndex:
    """A SQLite known-content index. Use as a context manager, or call `close()`."""

    def __init__(self, path: str | os.PathLike[str], create: bool = False, busy_timeout_s: float = 60.0) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise IndexFileError(f"index path is a folder: {self.path}")
        exists = self.path.exists() and self.path.stat().st_size > 0
        if not exists and not create:
            raise IndexFileError(f"index not found: {self.path} (create one with `deepdetect-index add`)")
        if exists:
            _check_header(self.path)
        self.busy_timeout_s = busy_timeout_s
        self.read_only = exists  # an existing index is opened for writing only when something is written
        self.conn = self._connect()
        try:
            if exists and self._has_tables():
                self._check_schema()
            elif create:
                self._create()
            else:
                raise IndexFileError(f"{self.path} is an empty SQLite file, not a deepdetect hash index")
        except sqlite3.DatabaseError as exc:
            self.conn.close()
            raise IndexFileError(f"{self.path} is not a usable deepdetect hash index (corrupt?): {exc}") from None
        except IndexFileError:
            self.conn.close()
            raise

    # ------------------------------------------------------------------------------------------------ lifecycle
    def _connect(self) -> sqlite3.Connection:
        mode = "ro" if self.read_only else "rwc"
        uri = f"file:{urllib.parse.quote(os.fsencode(self.path.absolute()))}?mode={mode}"
        try:
            conn = sqlite3.connect(uri, uri=True, timeout=self.busy_timeout_s, isolation_level=None)
            conn.execute("PRAGMA trusted_schema = OFF")  # no functions run from the file's schema
            conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as exc:
            raise IndexFileError(f"cannot open index {self.path}: {exc}") from None
        return conn

    def _open_for_writing(self) -> None:
        if not self.read_only:
            return
        self.conn.close()
        self.read_only = False
        self.conn = self._connect()
        try:
            self._check_schema()
        except sqlite3.DatabaseError as exc:
            raise IndexFileError(f"{self.path} is not a usable deepdetect hash index (corrupt?): {exc}") from None

    def _create(self) -> None:
        with self._write():
            if self.conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID:
                return  # another process created it first
            if self._has_tables():
                raise IndexFileError(f"{self.path} is an SQLite database but not a deepdetect hash index")
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self.conn.execute(statement)
            self.conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            self.conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _has_tables(self) -> bool:
        return self.conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0] > 0

    def _check_schema(self) -> None:
        app = self.conn.execute("PRAGMA application_id").fetchone()[0]
        if app != APPLICATION_ID:
            raise IndexFileError(f"{self.path} is an SQLite database but not a deepdetect hash index")
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise IndexFileError(
                f"{self.path} has index schema {version}; this deepdetect reads up to {SCHEMA_VERSION}"
            )
        found = {row for row in _schema_rows(self.conn) if not row[1].startswith("sqlite_stat")}  # ANALYZE's stats
        expected = _expected_schema()
        if found != expected:
            extra = sorted(found - expected)
            missing = sorted(expected - found)
            what = (
                f"unexpected {extra[0][0]} {extra[0][1]!r}" if extra else f"missing {missing[0][0]} {missing[0][1]!r}"
            )
            raise IndexFileError(
                f"{self.path} does not have the schema deepdetect writes ({what}): refusing a tampered or foreign index"
            )

    def verify(self) -> None:
        """Full check of the file: every page (SQLite's integrity check), references, and every row holding only
        values the toolkit writes (kinds, roles, 32-byte hashes, ranges, metadata JSON); raises IndexFileError."""
        try:
            rows = [r[0] for r in self.conn.execute("PRAGMA integrity_check").fetchall()]
            if rows == ["ok"]:
                rows = [
                    f"{r[0]} row {r[1]} references a missing row" for r in self.conn.execute("PRAGMA foreign_key_check")
                ]
                rows = rows or self._row_problems()
            else:
                rows = [f"corrupt: {r}" for r in rows]
        except sqlite3.DatabaseError as exc:
            raise IndexFileError(f"{self.path} is corrupt: {exc}") from None
        if rows:
            raise IndexFileError(f"{self.path} fails verification: {'; '.join(rows[:5])}")

    def _row_problems(self) -> list[str]:
        checks = {
            "items with a kind other than image/video": (
                "SELECT COUNT(*) FROM items WHERE kind NOT IN ('image', 'video')"
            ),
            "items with an empty or malformed ref/label": (
                "SELECT COUNT(*) FROM items WHERE typeof(ref) != 'text' OR typeof(label) != 'text' OR ref = '' "
                "OR label = '' OR instr(ref, ',') OR instr(label, ',') OR instr(ref || label, char(10)) "
                f"OR instr(ref || label, char(13)) OR length(ref) > {MAX_TEXT} OR length(label) > {MAX_TEXT}"
            ),
            "items whose metadata is not a JSON object": (
                f"SELECT COUNT(*) FROM items WHERE NOT json_valid(metadata) OR json_type(metadata) != 'object' "
                f"OR length(metadata) > {MAX_METADATA}"
            ),
            "items without hashes": "SELECT COUNT(*) FROM items WHERE id NOT IN (SELECT item_id FROM hashes)",
            "hashes that are not 32-byte blobs": "SELECT COUNT(*) FROM hashes WHERE typeof(hash) != 'blob' "
            "OR length(hash) != 32",
            "hashes with a role other than frame/face": (
                "SELECT COUNT(*) FROM hashes WHERE role NOT IN ('frame', 'face')"
            ),
            "hashes with out-of-range numbers": (
                "SELECT COUNT(*) FROM hashes WHERE typeof(frame_index) != 'integer' OR frame_index < 0 "
                f"OR frame_index > {MAX_FRAME_INDEX} OR typeof(quality) != 'integer' OR quality < 0 OR quality > 100 "
                "OR typeof(timestamp) NOT IN ('real', 'integer') OR abs(timestamp) > 1e15"
            ),
        }
        problems = []
        for what, sql in checks.items():
            n = int(self.conn.execute(sql).fetchone()[0])
            if n:
                problems.append(f"{n} {what}")
        return problems

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> HashIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[None]:
        """One write transaction holding SQLite's write lock from the start (no lost updates between processes)."""
        self._open_for_writing()
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise IndexFileError(f"index {self.path} is busy or read-only: {exc}") from None
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    @contextmanager
    def _reading(self, values: bool = True) -> Iterator[None]:
        """SQLite errors (and, when `values`, values the index never holds) become IndexFileError."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            raise IndexFileError(f"{self.path} is not a usable deepdetect hash index (corrupt?): {exc}") from None
        except _VALUE_ERRORS as exc:
            if not values:
                raise
            raise IndexFileError(
                f"{self.path} holds a value deepdetect does not write ({type(exc).__name__}: {str(exc)[:200]}); "
                "check it with `deepdetect-index info --verify`"
            ) from None

    # ------------------------------------------------------------------------------------------------ writes
    def add(self, items: Iterable[Item], replace: bool = False) -> tuple[int, int]:
        """Store items in one transaction; returns (added, skipped). An existing `ref` is skipped unless `replace`."""
        added = skipped = 0
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        with self._reading(values=False), self._write():
            for item in items:
                check_item(item)
                old = self.conn.execute("SELECT id FROM items WHERE ref = ?", (item.ref,)).fetchone()
                if old is not None:
                    if not replace:
                        skipped += 1
                        continue
                    self.conn.execute("DELETE FROM items WHERE id = ?", (old[0],))
                cur = self.conn.execute(
                    "INSERT INTO items (ref, kind, label, sha256, duration_s, source, added_at, metadata) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        item.ref,
                        item.kind,
                        item.label,
                        item.sha256,
                        item.duration_s,
                        item.source,
                        now,
                        json.dumps(item.metadata, sort_keys=True),
                    ),
                )
                item_id = cur.lastrowid
                self.conn.executemany(
                    "INSERT INTO hashes (item_id, frame_index, timestamp, quality, role, hash) VALUES (?,?,?,?,?,?)",
                    [(item_id, h.frame_index, h.timestamp, h.quality, h.role, h.bits) for h in item.hashes],
                )
                added += 1
        return added, skipped

    def remove(self, refs: Sequence[str] = (), label: str | None = None) -> int:
        """Delete items by reference id and/or every item with `label`; returns how many went."""
        with self._reading(values=False), self._write():
            n = 0
            for ref in refs:
                n += self.conn.execute("DELETE FROM items WHERE ref = ?", (ref,)).rowcount
            if label is not None:
                n += self.conn.execute("DELETE FROM items WHERE label = ?", (label,)).rowcount
        return n

    # ------------------------------------------------------------------------------------------------ reads
    def __len__(self) -> int:
        with self._reading():
            return int(self.conn.execute("SELECT COUNT(*) FROM items").fetchone()[0])

    def n_hashes(self) -> int:
        """Number of stored hashes (frames, images and faces)."""
        with self._reading():
            return int(self.conn.execute("SELECT COUNT(*) FROM hashes").fetchone()[0])

    def items(self, ids: Iterable[int] | None = None, with_hashes: bool = True) -> list[Item]:
        """Stored items (all, or those with the given row ids), in insertion order."""
        with self._reading():
            sql = "SELECT id, ref, kind, label, sha256, duration_s, source, metadata FROM items"
            if ids is None:
                rows = self.conn.execute(sql + " ORDER BY id").fetchall()
            else:
                wanted = sorted(set(int(i) for i in ids))
                rows = []
                for start in range(0, len(wanted), 500):
                    part = wanted[start : start + 500]
                    marks = ",".join("?" * len(part))
                    rows += self.conn.execute(f"{sql} WHERE id IN ({marks}) ORDER BY id", part).fetchall()
            out = []
            for rid, ref, kind, label, sha, dur, source, meta in rows:
                hashes: list[HashRow] = []
                if with_hashes:
                    hashes = [
                        HashRow(int(fi), float(ts), int(q), bytes(b), role)
                        for fi, ts, q, b, role in self.conn.execute(
                            "SELECT frame_index, timestamp, quality, hash, role FROM hashes "
                            "WHERE item_id = ? ORDER BY rowid",
                            (rid,),
                        )
                    ]
                if len(meta) > MAX_METADATA:
                    raise ValueError(f"metadata of {ref[:100]!r} is longer than {MAX_METADATA} characters")
                item = Item(ref, kind, label, hashes, sha, dur, source, json.loads(meta), id=int(rid))
                if with_hashes:  # an item read whole holds only what `add` accepts
                    check_item(item, metadata=False)
                out.append(item)
            return out

    def table(self) -> HashTable:
        """All hashes as arrays (one query), for building a searcher."""
        with self._reading():
            rows = self.conn.execute(
                "SELECT item_id, frame_index, timestamp, quality, role = 'face', hash FROM hashes ORDER BY rowid"
            ).fetchall()
            if not rows:
                empty = np.zeros(0)
                return HashTable(
                    np.zeros((0, HASH_BYTES), np.uint8), empty.astype(np.int64), empty, empty, empty, empty
                )
            item_ids, frame_index, ts, quality, is_face, blobs = zip(*rows, strict=True)
            codes = np.frombuffer(b"".join(blobs), dtype=np.uint8).reshape(len(rows), HASH_BYTES).copy()
            return HashTable(
                codes,
                np.asarray(item_ids, np.int64),
                np.asarray(frame_index, np.int64),
                np.asarray(ts, np.float64),
                np.asarray(quality, np.int32),
                np.asarray(is_face, bool),
            )

    def by_sha256(self, sha256: str) -> list[Item]:
        """Items recorded with exactly this file hash (byte-identical re-uploads)."""
        with self._reading():
            ids = [r[0] for r in self.conn.execute("SELECT id FROM items WHERE sha256 = ?", (sha256,))]
        return self.items(ids, with_hashes=False) if ids else []


def _check_header(path: Path) -> None:
    """Refuse files that are not SQLite databases before SQLite sees them."""
    try:
        with open_regular(path) as fh:  # a FIFO or device is refused, never read
            head = fh.read(100)
    except OSError as exc:
        raise IndexFileError(f"cannot read index {path}: {exc}") from None
    if not head.startswith(b"SQLite format 3\x00"):
        raise IndexFileError(f"{path} is not a deepdetect hash index (not an SQLite file, or its header is corrupt)")
    if len(head) < 100:
        raise IndexFileError(f"{path} is truncated ({len(head)} bytes): not a usable hash index")
    page_size = int.from_bytes(head[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    page_count = int.from_bytes(head[28:32], "big")
    header_size_valid = head[24:28] == head[92:96]  # SQLite trusts the page count only then
    if header_size_valid and page_count and path.stat().st_size < page_size * page_count:
        raise IndexFileError(
            f"{path} is truncated: {path.stat().st_size} bytes, its header says {page_size * page_count}"
        )
