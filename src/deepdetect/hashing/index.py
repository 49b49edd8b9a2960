"""The known-content index: a SQLite file of hashes, labels and metadata (never media).

One row per known item (an image, or a video with its frame hashes) in `items`, its hashes in `hashes`. Writers
take SQLite's write lock for the whole of each call (`BEGIN IMMEDIATE`, waiting up to `busy_timeout_s`), so two
processes adding at once both land. A file that is not a deepdetect index (corrupt, truncated, another database)
raises `IndexFileError` with a clear message; opening a missing file for reading never creates an empty index.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deepdetect.hashing.pdq import HASH_BYTES

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


class IndexFileError(Exception):
    """The index file is missing, corrupt, locked too long, or not a deepdetect hash index."""


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
        try:
            self.conn = sqlite3.connect(str(self.path), timeout=busy_timeout_s, isolation_level=None)
        except sqlite3.Error as exc:
            raise IndexFileError(f"cannot open index {self.path}: {exc}") from None
        try:
            self.conn.execute("PRAGMA foreign_keys = ON")
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

    def verify(self) -> None:
        """Full integrity check of the file (reads every page); raises IndexFileError."""
        try:
            rows = [r[0] for r in self.conn.execute("PRAGMA integrity_check").fetchall()]
        except sqlite3.DatabaseError as exc:
            raise IndexFileError(f"{self.path} is corrupt: {exc}") from None
        if rows != ["ok"]:
            raise IndexFileError(f"{self.path} is corrupt: {'; '.join(rows[:5])}")

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> HashIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[None]:
        """One write transaction holding SQLite's write lock from the start (no lost updates between processes)."""
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
    def _reading(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.DatabaseError as exc:
            raise IndexFileError(f"{self.path} is not a usable deepdetect hash index (corrupt?): {exc}") from None

    # ------------------------------------------------------------------------------------------------ writes
    def add(self, items: Iterable[Item], replace: bool = False) -> tuple[int, int]:
        """Store items in one transaction; returns (added, skipped). An existing `ref` is skipped unless `replace`."""
        added = skipped = 0
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        with self._reading(), self._write():
            for item in items:
                if item.kind not in KINDS:
                    raise ValueError(f"item kind must be one of {KINDS}, got {item.kind!r}")
                if not item.hashes:
                    raise ValueError(f"item {item.ref!r} has no hashes")
                for name, value in (("ref", item.ref), ("label", item.label)):
                    if not value or any(c in value for c in ",\r\n"):
                        raise ValueError(f"{name} must be non-empty without commas or newlines: {value!r}")
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
                for h in item.hashes:
                    if len(h.bits) != HASH_BYTES:
                        raise ValueError(f"hash of {item.ref!r} is {len(h.bits)} bytes, expected {HASH_BYTES}")
                self.conn.executemany(
                    "INSERT INTO hashes (item_id, frame_index, timestamp, quality, role, hash) VALUES (?,?,?,?,?,?)",
                    [(item_id, h.frame_index, h.timestamp, h.quality, h.role, h.bits) for h in item.hashes],
                )
                added += 1
        return added, skipped

    def remove(self, refs: Sequence[str] = (), label: str | None = None) -> int:
        """Delete items by reference id and/or every item with `label`; returns how many went."""
        with self._reading(), self._write():
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
                out.append(Item(ref, kind, label, hashes, sha, dur, source, json.loads(meta), id=int(rid)))
            return out

    def table(self) -> HashTable:
        """All hashes as arrays (one query), for building a searcher."""
        with self._reading():
            rows = self.conn.execute(
                "SELECT item_id, frame_index, timestamp, quality, role = 'face', hash FROM hashes ORDER BY rowid"
            ).fetchall()
        if not rows:
            empty = np.zeros(0)
            return HashTable(np.zeros((0, HASH_BYTES), np.uint8), empty.astype(np.int64), empty, empty, empty, empty)
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
        with path.open("rb") as fh:
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
