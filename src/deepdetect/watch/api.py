"""The library behind `deepdetect-watch add|check|report|verify|run`: builds the parts from typed options."""

from __future__ import annotations

import getpass
import os
import shutil
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from deepdetect.watch.check import Analyser, Checker, CheckSettings, make_run_id
from deepdetect.watch.evidence import EvidenceLog, VerifyResult, safe_case_folder, verify_evidence
from deepdetect.watch.fetch import Fetcher, FetchLimits, make_client
from deepdetect.watch.intake import Intake, read_url_csv
from deepdetect.watch.policy import AddressPolicy
from deepdetect.watch.schedule import HostGate, PassSettings, run_loop, run_pass
from deepdetect.watch.store import CheckRecord, Store

DEFAULT_CASE = "default"


@dataclass(frozen=True)
class CheckOptions:
    """Everything a check pass needs besides the store."""

    evidence_dir: str | None = None
    model: str | None = None
    index: str | None = None
    device: str = "cpu"
    allow_hosts: tuple[str, ...] = ()
    hash_only: bool = False
    platform_extractor: bool = False
    workers: int = 8
    per_host: int = 4
    host_rate: float = 5.0
    limits: FetchLimits = field(default_factory=FetchLimits)


def evidence_root(store: str, given: str | None) -> Path:
    """The evidence folder: as given, else `<store file>.evidence` beside a SQLite store."""
    if given:
        return Path(given)
    if "://" in store:
        raise ValueError("a database URL store needs --evidence FOLDER for the WARC files")
    return Path(str(store) + ".evidence")


def add_csv(
    store_path: str, csv_path: str, case: str = DEFAULT_CASE, added_by: str | None = None
) -> tuple[Intake, int, int]:
    """Add a CSV file's URLs to a case (the store is created when missing); returns (intake, added, present)."""
    safe_case_folder(case)
    intake = read_url_csv(csv_path)
    with Store(store_path, create=True) as store:
        added, present = store.add_urls(intake.urls, case, added_by or _user())
    return intake, added, present


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in a container
        return "unknown"


@contextmanager
def open_checker(store_path: str, options: CheckOptions) -> Iterator[Checker]:
    """A Checker wired to a fetcher (policy, limits, per-host gate), a run's evidence log and an analyser."""
    root = evidence_root(store_path, options.evidence_dir)
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    run_id = make_run_id()
    work = Path(tempfile.mkdtemp(prefix=".work-", dir=root))
    analyser = Analyser(options.model, options.index, options.device)
    client = make_client(options.limits, max_connections=max(8, options.workers * 2))
    fetcher = Fetcher(
        AddressPolicy.with_allowed(options.allow_hosts),
        options.limits,
        work_dir=work,
        client=client,
        gate=HostGate(options.per_host, options.host_rate),
    )
    evidence = EvidenceLog(root, run_id, hash_only=options.hash_only)
    settings = CheckSettings(hash_only=options.hash_only, platform_extractor=options.platform_extractor)
    try:
        yield Checker(fetcher, evidence, analyser, run_id, settings)
    finally:
        evidence.close()
        fetcher.close()
        analyser.close()
        shutil.rmtree(work, ignore_errors=True)


def check_store(
    store_path: str,
    options: CheckOptions,
    due_only: bool,
    case: str | None = None,
    every_s: float = 900.0,
    on_record: Callable[[CheckRecord], None] | None = None,
) -> Counter[str]:
    """One pass over the store's URLs (all, or those due); returns the count per status."""
    with Store(store_path) as store, open_checker(store_path, options) as checker:
        store.release_claims()
        settings = PassSettings(due_only=due_only, case=case, workers=options.workers, every_s=every_s)
        return run_pass(store, checker, settings, on_record=on_record)


def run_store(
    store_path: str,
    options: CheckOptions,
    every_s: float,
    stop: threading.Event,
    case: str | None = None,
    on_pass: Callable[[Counter[str]], None] | None = None,
) -> int:
    """Check what is due every `every_s` seconds until `stop` is set; returns the passes run."""
    with Store(store_path) as store, open_checker(store_path, options) as checker:
        settings = PassSettings(due_only=True, case=case, workers=options.workers, every_s=every_s)
        return run_loop(store, checker, settings, stop, on_pass)


def verify_store(store_path: str, evidence_dir: str | None = None) -> VerifyResult:
    """Re-hash every WARC record the store points at against the SHA-256 the store holds."""
    root = evidence_root(store_path, evidence_dir)
    with Store(store_path) as store:
        return verify_evidence(root, store.evidence_rows())


def workers_default() -> int:
    """Worker threads by default: network-bound work, a few per core."""
    return max(4, min(16, 4 * (os.cpu_count() or 1)))
