"""Fetch one URL safely: http/https only, every hop checked by the address policy before it connects.

httpx with connect/read timeouts and a total deadline, the body streamed into a private temporary file under a
size cap, redirects followed by hand (so each hop is policy-checked; at most `max_redirects`), a content-type
allow-list for successful responses, no proxy or settings from the environment (`trust_env=False`). The
connection goes to the very address the policy checked (the Host header and TLS server name keep the host name),
so a second DNS answer cannot redirect it. Bodies are kept as transferred (for the WARC record); a gzip/deflate
body is decoded for analysis under the same cap.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urljoin, urlsplit

import httpx

from deepdetect import __version__
from deepdetect.watch.policy import AddressPolicy, PolicyRefusal, Resolver
from deepdetect.watch.store import utc_iso
from deepdetect.watch.urls import UrlError, normalise_url, url_host

PAGE_TYPES = ("text/html", "application/xhtml+xml")
MEDIA_TYPES = (
    "image/jpeg", "image/png", "image/gif", "image/webp", "image/bmp",
    "video/mp4", "video/webm", "video/quicktime", "video/x-matroska", "video/x-msvideo", "video/mpeg",
)  # fmt: skip
REDIRECTS = (301, 302, 303, 307, 308)
USER_AGENT = f"deepdetect-watch/{__version__} (removal verification)"
ERROR_BODY_BYTES = 256 * 1024  # what is kept of a non-2xx body (evidence of the error page)
CHUNK = 64 * 1024


class Gate(Protocol):
    """Per-host limits: `slot(host)` waits for a free connection slot and the host's rate, then holds it."""

    def slot(self, host: str) -> contextlib.AbstractContextManager[None]: ...


@dataclass(frozen=True)
class FetchLimits:
    """Timeouts (seconds), size caps (bytes), the redirect cap and the content types accepted."""

    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    total_timeout: float = 60.0
    max_page_bytes: int = 5 * 1024 * 1024
    max_media_bytes: int = 200 * 1024 * 1024
    max_redirects: int = 5
    page_types: tuple[str, ...] = PAGE_TYPES
    media_types: tuple[str, ...] = MEDIA_TYPES


@dataclass
class Hop:
    """One request and its response (or the error that ended it)."""

    url: str
    address: str | None = None
    started_at: str = ""
    request_headers: list[tuple[str, str]] = field(default_factory=list)
    http_status: int | None = None
    http_reason: str = ""
    http_version: str = "HTTP/1.1"
    response_headers: list[tuple[str, str]] = field(default_factory=list)
    body_path: Path | None = None
    body_bytes: int = 0
    sha256: str | None = None
    truncated: bool = False
    truncated_why: str = "length"  # WARC-Truncated: length (the cap), time, disconnect

    def header(self, name: str) -> str | None:
        """The first response header of that name."""
        name = name.lower()
        return next((v for k, v in self.response_headers if k.lower() == name), None)


@dataclass
class FetchResult:
    """The outcome of fetching one URL: `response` (a final response), `blocked` or `unreachable`."""

    url: str
    outcome: str
    reason: str | None = None
    hops: list[Hop] = field(default_factory=list)
    content_type: str | None = None
    decoded_path: Path | None = None  # the body decoded from gzip/deflate, when it was encoded

    @property
    def final(self) -> Hop | None:
        """The last hop (the final response when outcome is `response`)."""
        return self.hops[-1] if self.hops else None

    @property
    def body_for_analysis(self) -> Path | None:
        """The decoded body file to parse or hash as media."""
        return self.decoded_path or (self.final.body_path if self.final else None)

    def cleanup(self) -> None:
        """Delete the temporary body files."""
        for p in [self.decoded_path, *(h.body_path for h in self.hops)]:
            if p is not None:
                with contextlib.suppress(OSError):
                    p.unlink()


def content_type_of(value: str | None) -> str | None:
    """The media type of a Content-Type header (`text/html; charset=x` -> `text/html`), None when unusable."""
    if not value:
        return None
    mtype = value.split(";", 1)[0].strip().lower()
    if len(mtype) > 100 or mtype.count("/") != 1 or any(ord(c) < 0x21 or ord(c) > 0x7E for c in mtype):
        return None
    return mtype


def make_client(limits: FetchLimits, max_connections: int = 32) -> httpx.Client:
    """The shared HTTP client: no environment proxies, no automatic redirects, identity encoding asked for."""
    timeout = httpx.Timeout(limits.read_timeout, connect=limits.connect_timeout, pool=limits.total_timeout)
    return httpx.Client(
        trust_env=False,
        follow_redirects=False,
        timeout=timeout,
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
    )


class Fetcher:
    """Fetch URLs with one client, one policy and one set of limits; bodies go to files under `work_dir`."""

    def __init__(
        self,
        policy: AddressPolicy,
        limits: FetchLimits | None = None,
        work_dir: str | os.PathLike[str] | None = None,
        client: httpx.Client | None = None,
        resolver: Resolver | None = None,
        gate: Gate | None = None,
    ) -> None:
        self.policy = policy
        self.limits = limits or FetchLimits()
        self.work_dir = Path(work_dir) if work_dir else None
        self.client = client or make_client(self.limits)
        self.resolver = resolver
        self.gate = gate

    def close(self) -> None:
        """Close the HTTP client."""
        self.client.close()

    def fetch(self, url: str, media: bool = False) -> FetchResult:
        """Fetch `url` following redirects by hand; `media` applies the media size cap and types (else page)."""
        limits = self.limits
        allowed = limits.media_types if media else limits.page_types + limits.media_types
        cap = limits.max_media_bytes if media else limits.max_page_bytes
        deadline = time.monotonic() + limits.total_timeout
        result = FetchResult(url, "unreachable")
        current = url
        for _ in range(limits.max_redirects + 1):
            hop = Hop(current, started_at=utc_iso())
            result.hops.append(hop)
            try:
                with self.gate.slot(url_host(current)) if self.gate else contextlib.nullcontext():
                    self._exchange(hop, cap, deadline)
            except PolicyRefusal as exc:
                result.outcome, result.reason = "blocked", str(exc)
                return result
            except _Failure as exc:
                result.outcome, result.reason = "unreachable", str(exc)
                return result
            status = hop.http_status or 0
            if status in REDIRECTS and hop.header("location"):
                try:
                    current = normalise_url(urljoin(current, hop.header("location") or ""))
                except UrlError as exc:
                    result.outcome, result.reason = "blocked", f"redirect refused: {exc}"
                    return result
                continue
            result.outcome = "response"
            result.content_type = content_type_of(hop.header("content-type"))
            if 200 <= status < 300:
                if hop.truncated:
                    result.outcome, result.reason = "unreachable", f"body larger than {cap} bytes"
                elif result.content_type not in allowed:
                    shown = (hop.header("content-type") or "none")[:80].encode("unicode_escape").decode("ascii")
                    result.outcome, result.reason = "unreachable", f"content type not accepted: {shown}"
                else:
                    self._decode(result, cap)
            return result
        result.outcome, result.reason = "unreachable", f"more than {limits.max_redirects} redirects"
        return result

    def _exchange(self, hop: Hop, cap: int, deadline: float) -> None:
        parts = urlsplit(hop.url)
        if parts.scheme not in ("http", "https"):
            raise PolicyRefusal(f"scheme {parts.scheme!r} refused")
        host = (parts.hostname or "").strip("[]")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            addresses = self.policy.addresses_for(host, port, self.resolver)
        except OSError as exc:
            raise _Failure(f"cannot resolve {host}: {exc}") from None
        hop.address = addresses[0]
        target = httpx.URL(hop.url).copy_with(host=addresses[0])
        headers = {"Host": parts.netloc.rsplit("@", 1)[-1]}
        extensions = {}
        if parts.scheme == "https":
            extensions["sni_hostname"] = host
            headers["Connection"] = "close"  # a pooled TLS connection is never reused for another server name
        request = self.client.build_request("GET", target, headers=headers, extensions=extensions)
        hop.request_headers = [(k, v) for k, v in request.headers.items()]
        fd = None
        digest = hashlib.sha256()
        try:
            resp = self.client.send(request, stream=True)
            try:
                hop.http_status = resp.status_code
                hop.http_reason = resp.reason_phrase
                hop.http_version = resp.http_version
                hop.response_headers = [
                    (k, v) for k, v in resp.headers.multi_items() if k.lower() != "transfer-encoding"
                ]
                keep = cap if 200 <= resp.status_code < 300 else min(cap, ERROR_BODY_BYTES)
                fd, name = tempfile.mkstemp(prefix="body-", dir=self.work_dir)
                hop.body_path = Path(name)
                with os.fdopen(fd, "wb") as out:
                    fd = None
                    for chunk in resp.iter_raw(CHUNK):
                        if hop.body_bytes + len(chunk) > keep:
                            chunk = chunk[: keep - hop.body_bytes]
                            hop.truncated, hop.truncated_why = True, "length"
                        out.write(chunk)
                        digest.update(chunk)
                        hop.body_bytes += len(chunk)
                        if hop.truncated:
                            break
                        if time.monotonic() > deadline:
                            raise _Failure(f"no complete response within {self.limits.total_timeout:g} s")
            finally:
                resp.close()
            hop.sha256 = digest.hexdigest()
        except _Failure:
            _cut(hop, digest, "time")
            raise
        except httpx.TimeoutException as exc:
            _cut(hop, digest, "time")
            raise _Failure(f"timeout: {type(exc).__name__}") from None
        except (httpx.HTTPError, OSError) as exc:
            _cut(hop, digest, "disconnect")
            raise _Failure(f"{type(exc).__name__}: {exc}"[:300]) from None
        finally:
            if fd is not None:
                os.close(fd)

    def _decode(self, result: FetchResult, cap: int) -> None:
        hop = result.final
        assert hop is not None and hop.body_path is not None
        enc = (hop.header("content-encoding") or "identity").strip().lower()
        if enc in ("", "identity"):
            return
        if enc not in ("gzip", "x-gzip", "deflate"):
            result.outcome, result.reason = "unreachable", f"content encoding not supported: {enc[:40]!r}"
            return
        wbits = 47 if "gzip" in enc else 15
        dec = zlib.decompressobj(wbits)
        fd, name = tempfile.mkstemp(prefix="decoded-", dir=self.work_dir)
        result.decoded_path = Path(name)
        size = 0
        try:
            with os.fdopen(fd, "wb") as out, hop.body_path.open("rb") as src:
                while chunk := src.read(CHUNK):
                    data = dec.decompress(chunk, cap + 1 - size)
                    size += len(data)
                    out.write(data)
                    if size > cap or dec.unconsumed_tail:
                        result.outcome, result.reason = "unreachable", f"decoded body larger than {cap} bytes"
                        return
        except zlib.error as exc:
            result.outcome, result.reason = "unreachable", f"bad {enc} body: {exc}"


def _cut(hop: Hop, digest: Any, why: str) -> None:
    """Mark a body that ended early (its SHA-256 covers what arrived, which the evidence keeps)."""
    if hop.body_path is not None:
        hop.truncated, hop.truncated_why, hop.sha256 = True, why, digest.hexdigest()


class _Failure(Exception):
    """The exchange failed (network, timeout, protocol): the URL is unreachable."""
