"""The watch store: reported URLs, every check and every media item seen, in SQLAlchemy Core tables.

A SQLite file by default (one file, no server); the same schema on PostgreSQL through a `postgresql://` URL.
Times are UTC ISO 8601 text (`2026-01-02T03:04:05.123456Z`), which sorts and compares the same in both engines.
Each recorded check is one transaction, so a killed run loses nothing already recorded; the URLs it had claimed
(`in_flight_since`) are due again on the next run.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

SCHEMA_VERSION = 1
STATUSES = ("new", "live", "removed", "changed", "unreachable", "blocked")

metadata = sa.MetaData()

meta_table = sa.Table(
    "watch_meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

urls_table = sa.Table(
    "watch_urls",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("case_name", sa.String(200), nullable=False),
    sa.Column("original_url", sa.Text, nullable=False),
    sa.Column("host", sa.Text, nullable=False),
    sa.Column("domain", sa.Text, nullable=False),
    sa.Column("note", sa.Text),
    sa.Column("reported_at", sa.String(40)),
    sa.Column("added_at", sa.String(40), nullable=False),
    sa.Column("added_by", sa.Text, nullable=False),
    sa.Column("status", sa.String(20), nullable=False, server_default="new"),
    sa.Column("status_since", sa.String(40)),
    sa.Column("first_seen", sa.String(40)),
    sa.Column("last_seen_live", sa.String(40)),
    sa.Column("removed_at", sa.String(40)),
    sa.Column("last_checked", sa.String(40)),
    sa.Column("next_due", sa.String(40), nullable=False),
    sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
    sa.Column("in_flight_since", sa.String(40)),
    sa.Column("baseline_check_id", sa.Integer),
    sa.UniqueConstraint("case_name", "url", name="watch_urls_case_url"),
)
sa.Index("watch_urls_due", urls_table.c.next_due)

checks_table = sa.Table(
    "watch_checks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("url_id", sa.Integer, sa.ForeignKey("watch_urls.id"), nullable=False),
    sa.Column("run_id", sa.String(40), nullable=False),
    sa.Column("started_at", sa.String(40), nullable=False),
    sa.Column("finished_at", sa.String(40), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("http_status", sa.Integer),
    sa.Column("final_url", sa.Text),
    sa.Column("content_type", sa.Text),
    sa.Column("body_sha256", sa.String(64)),
    sa.Column("body_bytes", sa.BigInteger),
    sa.Column("n_media", sa.Integer, nullable=False, server_default="0"),
    sa.Column("warc_file", sa.Text),
    sa.Column("warc_record_id", sa.Text),
    sa.Column("warc_offset", sa.BigInteger),
)
sa.Index("watch_checks_url", checks_table.c.url_id)

media_table = sa.Table(
    "watch_media",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("check_id", sa.Integer, sa.ForeignKey("watch_checks.id"), nullable=False),
    sa.Column("url_id", sa.Integer, sa.ForeignKey("watch_urls.id"), nullable=False),
    sa.Column("media_url", sa.Text, nullable=False),
    sa.Column("found_by", sa.String(40)),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("http_status", sa.Integer),
    sa.Column("content_type", sa.Text),
    sa.Column("kind", sa.String(10)),
    sa.Column("bytes", sa.BigInteger),
    sa.Column("sha256", sa.String(64)),
    sa.Column("pdq", sa.Text),
    sa.Column("score", sa.Float),
    sa.Column("label", sa.String(20)),
    sa.Column("known_ref", sa.Text),
    sa.Column("known_label", sa.Text),
    sa.Column("known_distance", sa.Integer),
    sa.Column("warc_file", sa.Text),
    sa.Column("warc_record_id", sa.Text),
    sa.Column("warc_offset", sa.BigInteger),
    sa.Column("body_kept", sa.Boolean, nullable=False, server_default=sa.false()),
)
sa.Index("watch_media_check", media_table.c.check_id)

hosts_table = sa.Table(
    "watch_hosts",
    metadata,
    sa.Column("host", sa.Text, primary_key=True),
    sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
    sa.Column("backoff_until", sa.String(40)),
)


class StoreError(Exception):
    """The store cannot be opened or is not a watch store of this version."""


def utc_iso(when: datetime | None = None) -> str:
    """UTC time as fixed-width ISO 8601 text with microseconds and `Z`."""
    when = (when or datetime.now(UTC)).astimezone(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(text: str) -> datetime:
    """A time written by `utc_iso` (or any ISO 8601 text; naive means UTC) as an aware datetime."""
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def engine_url(store: str | os.PathLike[str]) -> str:
    """The SQLAlchemy URL for a store: a file path means SQLite; `postgresql://` uses the psycopg 3 driver."""
    text = os.fspath(store)
    if text.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + text.split("://", 1)[1]
    if "://" in text:
        return text
    return "sqlite:///" + str(Path(text).absolute())


def _shown(store: str | os.PathLike[str]) -> str:
    """The store as it may be printed: a database URL without its password."""
    text = os.fspath(store)
    if "://" not in text:
        return text
    try:
        return sa.engine.make_url(text).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL: show only its scheme
        return text.split("://", 1)[0] + "://..."


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


@dataclass(frozen=True)
class NewUrl:
    """One reported URL to add."""

    url: str
    original_url: str
    host: str
    domain: str
    note: str | None = None
    reported_at: str | None = None


@dataclass
class CheckRecord:
    """One finished check of one URL, with the media found on it: what `Store.record_check` writes."""

    url_id: int
    run_id: str
    started_at: str
    finished_at: str
    status: str
    reason: str | None = None
    http_status: int | None = None
    final_url: str | None = None
    content_type: str | None = None
    body_sha256: str | None = None
    body_bytes: int | None = None
    warc_file: str | None = None
    warc_record_id: str | None = None
    warc_offset: int | None = None
    media: list[dict[str, Any]] = field(default_factory=list)
    host: str | None = None
    next_due: str | None = None
    host_backoff_until: str | None = None
    set_baseline: bool = False


class Store:
    """A watch store opened from a file path or a database URL; `create=True` makes the tables when missing."""

    def __init__(self, store: str | os.PathLike[str], create: bool = False) -> None:
        url = engine_url(store)
        self.is_sqlite = url.startswith("sqlite")
        self.location = _shown(store)
        if self.is_sqlite:
            path = Path(url.removeprefix("sqlite:///"))
            if not create and not path.is_file():
                raise StoreError(f"store not found: {path} (create it with `deepdetect-watch add`)")
            if create:
                path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.engine: Engine = sa.create_engine(
                url, connect_args={"check_same_thread": False} if self.is_sqlite else {}, pool_pre_ping=True
            )
        except Exception as exc:  # a bad URL, a missing driver
            raise StoreError(f"cannot open store {self.location}: {exc}") from None
        if self.is_sqlite:
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        self._prepare(create)

    def _prepare(self, create: bool) -> None:
        try:
            with self.engine.begin() as conn:
                names = set(sa.inspect(conn).get_table_names())
                if meta_table.name not in names:
                    if not create:
                        raise StoreError(f"{self.location} is not a deepdetect-watch store")
                    metadata.create_all(conn)
                    conn.execute(sa.insert(meta_table).values(key="schema_version", value=str(SCHEMA_VERSION)))
                    return
                version = conn.execute(
                    sa.select(meta_table.c.value).where(meta_table.c.key == "schema_version")
                ).scalar()
        except StoreError:
            raise
        except Exception as exc:  # sqlalchemy.exc.DatabaseError: not a database, no server, bad password
            raise StoreError(f"cannot open store {self.location}: {type(exc).__name__}: {exc}") from None
        if version != str(SCHEMA_VERSION):
            raise StoreError(f"{self.location}: watch store schema {version}, this tool reads {SCHEMA_VERSION}")

    def close(self) -> None:
        """Release the connections."""
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- adding -----------------------------------------------------------------------------------------------
    def add_urls(self, items: Iterable[NewUrl], case: str, added_by: str, now: str | None = None) -> tuple[int, int]:
        """Insert URLs not yet in the case (due at once); returns (added, already present)."""
        now = now or utc_iso()
        added = present = 0
        with self.engine.begin() as conn:
            existing = set(conn.execute(sa.select(urls_table.c.url).where(urls_table.c.case_name == case)).scalars())
            rows = []
            for it in items:
                if it.url in existing:
                    present += 1
                    continue
                existing.add(it.url)
                rows.append(
                    {
                        "url": it.url,
                        "case_name": case,
                        "original_url": it.original_url,
                        "host": it.host,
                        "domain": it.domain,
                        "note": it.note,
                        "reported_at": it.reported_at,
                        "added_at": now,
                        "added_by": added_by,
                        "status": "new",
                        "next_due": now,
                    }
                )
            if rows:
                conn.execute(sa.insert(urls_table), rows)
            added = len(rows)
        return added, present

    # --- scheduling ---------------------------------------------------------------------------------------------
    def release_claims(self) -> int:
        """Make every claimed (in flight) URL due again: what a killed run was fetching is fetched once more."""
        with self.engine.begin() as conn:
            res = conn.execute(
                sa.update(urls_table).where(urls_table.c.in_flight_since.is_not(None)).values(in_flight_since=None)
            )
        return int(res.rowcount or 0)

    def due_urls(self, now: str, due_only: bool, case: str | None = None, limit: int | None = None) -> list[dict]:
        """URLs to check (all, or those due by `now`), earliest due first, skipping hosts in backoff."""
        u, h = urls_table, hosts_table
        q = (
            sa.select(u.c.id, u.c.url, u.c.host, u.c.case_name, u.c.status, u.c.failures, u.c.baseline_check_id)
            .select_from(u.outerjoin(h, h.c.host == u.c.host))
            .where(u.c.in_flight_since.is_(None))
            .order_by(u.c.next_due, u.c.id)
        )
        if due_only:
            q = q.where(u.c.next_due <= now).where(sa.or_(h.c.backoff_until.is_(None), h.c.backoff_until <= now))
        if case is not None:
            q = q.where(u.c.case_name == case)
        if limit is not None:
            q = q.limit(limit)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def claim(self, url_ids: Sequence[int], now: str) -> None:
        """Mark URLs in flight (one transaction)."""
        if not url_ids:
            return
        with self.engine.begin() as conn:
            for chunk in _chunks(list(url_ids), 500):
                conn.execute(sa.update(urls_table).where(urls_table.c.id.in_(chunk)).values(in_flight_since=now))

    def baseline_media(self, check_id: int | None) -> list[dict[str, Any]]:
        """The media rows of a URL's baseline check (the first live check that served media)."""
        if check_id is None:
            return []
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(media_table).where(media_table.c.check_id == check_id))
            return [dict(r._mapping) for r in rows]

    def host_failures(self, host: str) -> int:
        """Consecutive unreachable checks of this host."""
        with self.engine.connect() as conn:
            value = conn.execute(sa.select(hosts_table.c.failures).where(hosts_table.c.host == host)).scalar()
        return int(value or 0)

    # --- recording ----------------------------------------------------------------------------------------------
    def record_check(self, rec: CheckRecord) -> int:
        """Write one check with its media and update the URL (and its host's backoff), in one transaction."""
        with self.engine.begin() as conn:
            values = {k: getattr(rec, k) for k in _CHECK_FIELDS}
            pk = conn.execute(sa.insert(checks_table).values(**values, n_media=len(rec.media))).inserted_primary_key
            assert pk is not None
            check_id = int(pk[0])
            if rec.media:
                conn.execute(
                    sa.insert(media_table), [{**m, "check_id": check_id, "url_id": rec.url_id} for m in rec.media]
                )
            u, now = urls_table.c, rec.finished_at
            upd: dict[str, Any] = {
                "status": rec.status,
                "last_checked": now,
                "in_flight_since": None,
                "next_due": rec.next_due or now,
                "failures": u.failures + 1 if rec.status == "unreachable" else 0,
                "status_since": sa.case((u.status == rec.status, u.status_since), else_=now),
            }
            if rec.status == "live":
                upd["last_seen_live"] = now
                upd["first_seen"] = sa.func.coalesce(u.first_seen, now)
            if rec.status == "removed":
                upd["removed_at"] = sa.case((u.status == "removed", u.removed_at), else_=now)
            elif rec.status in ("live", "changed"):
                upd["removed_at"] = None  # back online: a removal that did not last
            if rec.set_baseline:
                upd["baseline_check_id"] = check_id
            conn.execute(sa.update(urls_table).where(u.id == rec.url_id).values(**upd))
            if rec.host is not None:
                self._update_host(conn, rec.host, rec.status == "unreachable", rec.host_backoff_until)
        return check_id

    def _update_host(self, conn: sa.Connection, host: str, failed: bool, backoff_until: str | None) -> None:
        h = hosts_table
        if not failed:  # the common case: one statement, a no-op for a host that never failed
            conn.execute(sa.update(h).where(h.c.host == host, h.c.failures > 0).values(failures=0, backoff_until=None))
            return
        row = conn.execute(sa.select(h.c.failures).where(h.c.host == host)).first()
        failures = (int(row[0]) + 1 if row else 1) if failed else 0
        values = {"failures": failures, "backoff_until": backoff_until if failed else None}
        if row is None:
            conn.execute(sa.insert(h).values(host=host, **values))
        else:
            conn.execute(sa.update(h).where(h.c.host == host).values(**values))

    # --- reading ------------------------------------------------------------------------------------------------
    def urls(self, case: str | None = None) -> list[dict[str, Any]]:
        """Every URL row (of one case), in the order added."""
        q = sa.select(urls_table).order_by(urls_table.c.id)
        if case is not None:
            q = q.where(urls_table.c.case_name == case)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def checks(self, url_id: int | None = None) -> list[dict[str, Any]]:
        """Check rows (of one URL), oldest first."""
        q = sa.select(checks_table).order_by(checks_table.c.id)
        if url_id is not None:
            q = q.where(checks_table.c.url_id == url_id)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def media(self, check_ids: Sequence[int] | None = None) -> list[dict[str, Any]]:
        """Media rows (of some checks), in the order found."""
        q = sa.select(media_table).order_by(media_table.c.id)
        out: list[dict[str, Any]] = []
        with self.engine.connect() as conn:
            if check_ids is None:
                return [dict(r._mapping) for r in conn.execute(q)]
            for chunk in _chunks(list(check_ids), 500):
                out += [dict(r._mapping) for r in conn.execute(q.where(media_table.c.check_id.in_(chunk)))]
        return out

    def evidence_rows(self) -> Iterator[dict[str, Any]]:
        """Every stored WARC reference with the SHA-256 it must hash to: (table, id, warc_file, record id, sha256)."""
        with self.engine.connect() as conn:
            c, m = checks_table, media_table
            for r in conn.execute(sa.select(c.c.id, c.c.warc_file, c.c.warc_record_id, c.c.body_sha256)):
                if r.warc_file:
                    yield {
                        "table": "check",
                        "id": r.id,
                        "warc_file": r.warc_file,
                        "record_id": r.warc_record_id,
                        "sha256": r.body_sha256,
                    }
            for mr in conn.execute(sa.select(m.c.id, m.c.warc_file, m.c.warc_record_id, m.c.sha256, m.c.found_by)):
                if mr.warc_file and mr.sha256 and mr.found_by != "direct":
                    yield {
                        "table": "media",
                        "id": mr.id,
                        "warc_file": mr.warc_file,
                        "record_id": mr.warc_record_id,
                        "sha256": mr.sha256,
                    }


_CHECK_FIELDS = (
    "url_id", "run_id", "started_at", "finished_at", "status", "reason", "http_status", "final_url",
    "content_type", "body_sha256", "body_bytes", "warc_file", "warc_record_id", "warc_offset",
)  # fmt: skip


def _chunks(items: list[Any], n: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def later(when: str, seconds: float) -> str:
    """`when` plus some seconds, as store time text."""
    return utc_iso(parse_iso(when) + timedelta(seconds=seconds))
