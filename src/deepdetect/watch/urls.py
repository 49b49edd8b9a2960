"""Reported URLs: normalise them, de-duplicate them, and name their registrable domain (public-suffix aware)."""

from __future__ import annotations

import functools
import ipaddress
import re
import string
from urllib.parse import SplitResult, quote, urlsplit, urlunsplit

SCHEMES = ("http", "https")
DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_URL_CHARS = 4096
# Path and query characters kept as they are; everything else is percent-encoded once (after one decode).
_SAFE_PATH = "/:@!$&'()*+,;=-._~"
_SAFE_QUERY = _SAFE_PATH + "?"
_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")


class UrlError(ValueError):
    """A reported URL that cannot be watched (not http/https, no host, control characters, too long)."""


def normalise_url(url: str) -> str:
    """The canonical form of an http(s) URL: lower-case scheme and host (IDNA), no default port, no fragment,
    `/` for an empty path, percent-encoding made uniform; raises UrlError for anything else."""
    text = url.strip()
    if not text:
        raise UrlError("empty URL")
    if len(text) > MAX_URL_CHARS:
        raise UrlError(f"URL longer than {MAX_URL_CHARS} characters")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise UrlError("URL contains control characters")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise UrlError(f"not a URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise UrlError(f"only http and https URLs are watched, not {scheme or 'a URL without a scheme'!r}")
    host = _normal_host(parts.hostname or "")
    netloc = host if port in (None, DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    path = _normal_part(parts.path, _SAFE_PATH) or "/"
    query = _normal_part(parts.query, _SAFE_QUERY)
    return urlunsplit(SplitResult(scheme, netloc, path, query, ""))


def _normal_part(text: str, safe: str) -> str:
    """Percent-escapes of unreserved characters decoded, the others upper-cased, bare unsafe characters encoded
    (reserved characters keep their meaning: `%26` stays `%26`, `&` stays `&`)."""

    def escape(m: re.Match[str]) -> str:
        char = chr(int(m.group(1), 16))
        return char if char in _UNRESERVED else m.group(0).upper()

    return quote(_ESCAPE.sub(escape, text), safe=safe + "%")


def _normal_host(host: str) -> str:
    if not host:
        raise UrlError("URL has no host")
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    else:
        return f"[{ip.compressed}]" if ip.version == 6 else ip.compressed
    name = host.rstrip(".").lower()
    try:
        name = name.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise UrlError(f"bad host name {host!r}: {exc}") from None
    if not name or any(c in name for c in " /\\%"):
        raise UrlError(f"bad host name {host!r}")
    return name


def url_host(url: str) -> str:
    """The host of a normalised URL (IPv6 without brackets)."""
    return (urlsplit(url).hostname or "").strip("[]")


@functools.cache
def _extractor() -> object:
    import tldextract

    # The public-suffix list bundled with tldextract only: no download, no cache directory.
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True)


def registrable_domain(url: str) -> str:
    """The registrable domain (eTLD+1) of a URL's host, e.g. `example.co.uk`; an IP address or a name under a
    public suffix alone is returned as the host itself."""
    host = url_host(url)
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    ext = _extractor()(host)  # type: ignore[operator]
    return str(ext.top_domain_under_public_suffix or host)
