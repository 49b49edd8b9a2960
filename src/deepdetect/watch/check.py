"""One check of one URL: fetch it, keep the evidence, find and analyse its media, decide its status.

Statuses: `live` (the page answers and still serves the media first seen on it, or its first media), `removed`
(HTTP 404/410/451, or the page answers but none of the media first seen is served any more and no media is
left), `changed` (the page answers but serves other media than first seen), `unreachable` (network error,
timeout, 5xx or another error status, too many redirects, a body over the cap, a content type not accepted),
`blocked` (refused by the address policy, on the first request or a redirect hop). Media are scored with
predict's public functions and matched with the known-content index through hashing's public functions.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepdetect.watch.discover import MediaRef, media_on_page, platform_media
from deepdetect.watch.evidence import EvidenceLog, EvidenceRef
from deepdetect.watch.fetch import Fetcher, FetchResult
from deepdetect.watch.store import CheckRecord, utc_iso

log = logging.getLogger(__name__)

REMOVED_HTTP = (404, 410, 451)
REDIRECTS_LEFT = (301, 302, 303, 307, 308)  # a redirect status without a Location header
SUFFIXES = {
    "image/jpeg": ".jpg", "image/png": ".png", "image/gif": ".gif", "image/webp": ".webp", "image/bmp": ".bmp",
    "video/mp4": ".mp4", "video/webm": ".webm", "video/quicktime": ".mov", "video/x-matroska": ".mkv",
    "video/x-msvideo": ".avi", "video/mpeg": ".mp4",
}  # fmt: skip


def media_kind_of(content_type: str | None) -> str | None:
    """`image` or `video` for a media content type, else None."""
    if content_type in SUFFIXES:
        return "image" if content_type.startswith("image/") else "video"
    return None


class Analyser:
    """Scores media files with a detector (predict's public functions) and matches them against a known-content
    index (hashing's public functions); either part may be off. Every call runs on one dedicated thread (the
    index's SQLite connection and the model stay on the thread that opened them), one file at a time."""

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        index: str | os.PathLike[str] | None = None,
        device: str = "cpu",
    ) -> None:
        self.predictor: Any = None
        self.detector: Any = None
        self.settings: Any = None
        self.matcher: Any = None
        self._index: Any = None
        self.enabled = model is not None or index is not None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="watch-analyse")
        try:
            self._pool.submit(self._load, model, index, device).result()
        except BaseException:
            self._pool.shutdown()
            raise

    def _load(self, model: str | os.PathLike[str] | None, index: str | os.PathLike[str] | None, device: str) -> None:
        if model is not None:
            from deepdetect.inference.predict import predict_detector
            from deepdetect.inference.predictor import Predictor
            from deepdetect.inference.settings import PredictSettings

            self.predictor = Predictor.from_path(model, device=device)
            self.detector = predict_detector(self.predictor.contract, device=device)
            self.settings = PredictSettings(device=device, progress=False, workers=0)
        if index is not None:
            from deepdetect.hashing.index import HashIndex
            from deepdetect.hashing.match import Matcher

            self._index = HashIndex(index)
            self.matcher = Matcher(self._index)

    def close(self) -> None:
        """Close the index and stop the thread."""
        if self._index is not None:
            self._pool.submit(self._index.close).result()
        self._pool.shutdown()

    def analyse(self, path: Path) -> dict[str, Any]:
        """PDQ (image: hex; video: the first frame's, with the frame count), model score and label, known match."""
        return self._pool.submit(self._analyse, path).result()

    def _analyse(self, path: Path) -> dict[str, Any]:
        from deepdetect.hashing import api

        out: dict[str, Any] = {}
        rec = next(iter(api.records_for([path], dihedral=self.matcher is not None)), None)
        if rec is not None and rec.get("status") == "ok":
            if rec.get("kind") == "image":
                out["pdq"] = rec.get("pdq")
            elif rec.get("frames"):
                frames = rec["frames"]
                more = f" (+{len(frames) - 1} frames)" if len(frames) > 1 else ""
                out["pdq"] = frames[0]["pdq"] + more
            if self.matcher is not None:
                res = next(iter(api.match_records(self.matcher, [rec])))
                best = res.get("known_match")
                if best:
                    out.update(known_ref=best["ref"], known_label=best["label"], known_distance=best["distance"])
        elif rec is not None:
            out["reason"] = f"not hashable: {rec.get('status')}"
        if self.predictor is not None:
            from deepdetect.inference.predict import predict_files

            pred = next(iter(predict_files([path], self.predictor, self.detector, self.settings)), None)
            if pred is not None:
                out["score"] = pred.get("score")
                out["label"] = pred.get("label") or pred.get("status")
        return out


@dataclass(frozen=True)
class CheckSettings:
    """What a check keeps and how far it looks."""

    hash_only: bool = False
    platform_extractor: bool = False  # yt-dlp for pages without embedded media
    max_media: int = 20


@dataclass(frozen=True)
class Target:
    """A URL to check, with what is known of it from the store."""

    url_id: int
    url: str
    host: str
    case_name: str
    baseline: tuple[dict[str, Any], ...] = ()


def decide_status(
    result: FetchResult, media: list[dict[str, Any]], baseline: tuple[dict[str, Any], ...]
) -> tuple[str, str | None, bool]:
    """(status, reason, whether this check becomes the baseline) from the page fetch and its analysed media."""
    if result.outcome == "blocked":
        return "blocked", result.reason, False
    if result.outcome != "response":
        return "unreachable", result.reason, False
    code = result.final.http_status if result.final else None
    if code in REDIRECTS_LEFT:
        return "unreachable", f"redirect without a location (HTTP {code})", False
    if code in REMOVED_HTTP:
        return "removed", f"HTTP {code}", False
    if code is None or not 200 <= code < 300:
        return "unreachable", f"HTTP {code}", False
    served = [m for m in media if m["status"] == "ok"]
    gone = [m for m in media if m["status"] == "removed"]
    failed = [m for m in media if m["status"] == "error"]  # not fetched (timeout, cap, type): no evidence either way
    if not baseline:
        if served:
            return "live", None, True
        if failed:
            return "unreachable", f"page answers, media not fetched: {failed[0].get('reason')}", False
        if gone:
            return "removed", f"{len(gone)} media no longer served", False
        return "live", None if media else "no media found on the page", False
    known_sha = {m["sha256"] for m in baseline if m.get("sha256")}
    known_refs = {m["known_ref"] for m in baseline if m.get("known_ref")}
    still = [m for m in served if m.get("sha256") in known_sha or (m.get("known_ref") and m["known_ref"] in known_refs)]
    if still:
        return "live", None, False
    if served:
        return "changed", f"{len(served)} media served, none of those first seen", False
    if failed:
        return "unreachable", f"page answers, media not fetched: {failed[0].get('reason')}", False
    return "removed", "the media first seen are no longer served", False


class Checker:
    """Checks URLs with one fetcher, one evidence log and one analyser (all shared by the worker threads)."""

    def __init__(self, fetcher: Fetcher, evidence: EvidenceLog, analyser: Analyser, run_id: str | None = None,
                 settings: CheckSettings | None = None) -> None:  # fmt: skip
        self.fetcher = fetcher
        self.evidence = evidence
        self.analyser = analyser
        self.settings = settings or CheckSettings()
        self.run_id = run_id or evidence.run_id or uuid.uuid4().hex

    def check(self, target: Target) -> CheckRecord:
        """Check one URL; never raises for anything the page or the network does."""
        started = utc_iso()
        rec = CheckRecord(target.url_id, self.run_id, started, started, "unreachable", host=target.host)
        try:
            self._check(target, rec)
        except Exception as exc:  # a bug must cost this URL's check, not the run
            log.warning("check of %s failed", target.url, exc_info=True)
            rec.status, rec.reason = "unreachable", f"internal error: {type(exc).__name__}: {exc}"[:300]
        rec.finished_at = utc_iso()
        return rec

    def _check(self, target: Target, rec: CheckRecord) -> None:
        page = self.fetcher.fetch(target.url)
        try:
            direct = media_kind_of(page.content_type) is not None
            ref = self._keep(target.case_name, page, keep_body=not (direct and self.evidence.hash_only))
            final = page.final
            if final is not None:
                rec.http_status, rec.final_url = final.http_status, final.url
                rec.body_sha256, rec.body_bytes = final.sha256, final.body_bytes
            rec.content_type = page.content_type
            if ref is not None:
                rec.warc_file, rec.warc_record_id, rec.warc_offset = ref.warc_file, ref.record_id, ref.offset
            media: list[dict[str, Any]] = []
            if page.outcome == "response" and final is not None and 200 <= (final.http_status or 0) < 300:
                media = self._media(target, page, ref)
            rec.media = media
            rec.status, rec.reason, rec.set_baseline = decide_status(page, media, target.baseline)
        finally:
            page.cleanup()

    def _keep(self, case: str, result: FetchResult, keep_body: bool) -> EvidenceRef | None:
        ref = None
        for hop in result.hops:
            ref = self.evidence.write_exchange(case, hop, keep_body=keep_body) or ref
        return ref

    def _media(self, target: Target, page: FetchResult, page_ref: EvidenceRef | None) -> list[dict[str, Any]]:
        kind = media_kind_of(page.content_type)
        if kind is not None:  # the URL is the media itself
            return [self._analyse_body(target, page, MediaRef(target.url, "direct"), page_ref)]
        body = page.body_for_analysis
        refs = (
            media_on_page(body, page.final.url if page.final else target.url, self.settings.max_media) if body else []
        )
        if not refs and self.settings.platform_extractor:
            refs = platform_media(target.url)
        out = []
        for ref in refs[: self.settings.max_media]:
            result = self.fetcher.fetch(ref.url, media=True)
            try:
                out.append(self._analyse_body(target, result, ref))
            finally:
                result.cleanup()
        return out

    def _analyse_body(
        self, target: Target, result: FetchResult, ref: MediaRef, page_ref: EvidenceRef | None = None
    ) -> dict[str, Any]:
        row: dict[str, Any] = {"media_url": ref.url, "found_by": ref.found_by, "content_type": result.content_type}
        final = result.final
        code = final.http_status if final else None
        row["http_status"] = code
        kind = media_kind_of(result.content_type)
        ok = result.outcome == "response" and code is not None and 200 <= code < 300 and kind is not None
        keep = ok and not self.evidence.hash_only
        evidence = page_ref  # a direct media URL's response is the page's own record
        if ref.found_by != "direct":
            evidence = self._keep(target.case_name, result, keep_body=keep or not ok)
        if evidence is not None:
            row.update(warc_file=evidence.warc_file, warc_record_id=evidence.record_id, warc_offset=evidence.offset)
        if not ok:
            status = "removed" if code in REMOVED_HTTP else ("blocked" if result.outcome == "blocked" else "error")
            row.update(status=status, reason=result.reason or f"HTTP {code}")
            return row
        assert final is not None
        row.update(status="ok", kind=kind, bytes=final.body_bytes, sha256=final.sha256, body_kept=keep)
        body = result.body_for_analysis
        if body is not None and kind is not None:
            row.update(self._analyse_file(body, result.content_type or ""))
        return row

    def _analyse_file(self, body: Path, content_type: str) -> dict[str, Any]:
        folder = Path(tempfile.mkdtemp(prefix="media-", dir=self.fetcher.work_dir))
        try:
            path = folder / ("media" + SUFFIXES.get(content_type, ".bin"))
            os.link(body, path) if _same_device(body, folder) else shutil.copyfile(body, path)
            return self.analyser.analyse(path)
        except Exception as exc:  # a file the hashing or the model cannot take: recorded on the media row
            log.info("analysis failed", exc_info=True)
            return {"reason": f"analysis failed: {type(exc).__name__}: {exc}"[:300]}
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def _same_device(a: Path, b: Path) -> bool:
    try:
        return a.stat().st_dev == b.stat().st_dev
    except OSError:
        return False


def make_run_id() -> str:
    """A new run id."""
    return uuid.uuid4().hex
