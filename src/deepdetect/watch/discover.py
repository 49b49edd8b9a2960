"""Find the media on a fetched page: `<video>`/`<source>`/`<img>` and `og:video`/`og:image` in HTML, or the
response itself when it is an image or a video. Platform pages may use yt-dlp as a library (optional extra)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

from deepdetect.watch.urls import UrlError, normalise_url

log = logging.getLogger(__name__)

MAX_HTML_BYTES = 2 * 1024 * 1024  # what of a page is parsed (the page itself may be larger up to the fetch cap)
MAX_MEDIA_PER_PAGE = 20
MEDIA_TAGS = ("video", "source", "img", "meta")
OG_PROPERTIES = {
    "og:video": "og:video",
    "og:video:url": "og:video",
    "og:video:secure_url": "og:video",
    "og:image": "og:image",
    "og:image:url": "og:image",
    "og:image:secure_url": "og:image",
}


@dataclass(frozen=True)
class MediaRef:
    """A media URL found on a page and how it was found (`video`, `source`, `img`, `og:video`, `og:image`,
    `direct`, `yt-dlp`)."""

    url: str
    found_by: str


def media_on_page(html_path: Path, page_url: str, limit: int = MAX_MEDIA_PER_PAGE) -> list[MediaRef]:
    """The media URLs an HTML page embeds, absolute and normalised, de-duplicated, videos first, at most `limit`.

    Only the first MAX_HTML_BYTES are parsed, and only the media tags are built into a tree (a SoupStrainer), so
    deep nesting or a huge page costs bounded memory."""
    from bs4 import BeautifulSoup, SoupStrainer

    with html_path.open("rb") as fh:
        raw = fh.read(MAX_HTML_BYTES)
    soup = BeautifulSoup(raw, "html.parser", parse_only=SoupStrainer(MEDIA_TAGS))
    found: list[tuple[int, MediaRef]] = []
    base = page_url
    for tag in soup.find_all(MEDIA_TAGS):
        name = tag.name
        if name == "meta":
            prop = str(tag.get("property") or tag.get("name") or "").strip().lower()
            kind = OG_PROPERTIES.get(prop)
            value = tag.get("content")
        else:
            kind = name
            value = tag.get("src")
        if not kind or not isinstance(value, str) or not value.strip():
            continue
        try:
            url = normalise_url(urljoin(base, value.strip()))
        except (UrlError, ValueError):
            continue  # data:, javascript:, malformed: not fetchable media
        rank = 0 if "video" in kind or kind == "source" else 1
        found.append((rank, MediaRef(url, kind)))
    seen: set[str] = set()
    out: list[MediaRef] = []
    for _rank, ref in sorted(found, key=lambda t: t[0]):
        if ref.url not in seen:
            seen.add(ref.url)
            out.append(ref)
    return out[:limit]


def platform_media(url: str) -> list[MediaRef]:
    """Media URLs yt-dlp's extractors find for a platform page (needs the `platforms` extra); [] when yt-dlp is
    absent or finds nothing. yt-dlp fetches the page itself: only use it for hosts the address policy allows,
    which the caller checks first; the media URLs it returns are fetched through the policy like any other."""
    try:
        import yt_dlp
    except ImportError:
        return []
    opts: dict[str, Any] = {
        "quiet": True,
        "no_warnings": True,
        "skip_download": True,
        "noplaylist": True,
        "proxy": "",  # no proxy from the environment
        "logger": log,
    }
    try:
        with yt_dlp.YoutubeDL(opts) as ydl:
            info = ydl.extract_info(url, download=False)
    except Exception as exc:  # yt-dlp raises its own DownloadError for unsupported or unreachable pages
        log.info("yt-dlp found no media on %s: %s", url, exc)
        return []
    out: list[MediaRef] = []
    for entry in [info, *(info.get("entries") or [])] if isinstance(info, dict) else []:
        media_url = entry.get("url") if isinstance(entry, dict) else None
        if isinstance(media_url, str):
            try:
                out.append(MediaRef(normalise_url(media_url), "yt-dlp"))
            except UrlError:
                continue
    return out[:MAX_MEDIA_PER_PAGE]
