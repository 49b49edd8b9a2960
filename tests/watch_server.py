"""A loopback HTTP server for the watch tests and benchmark: routes a test can change between checks.

Binds 127.0.0.1 only. Each route is a `Route` (status, headers, body bytes); `kind` selects special behaviour:
`slow` (sleep before answering), `endless` (a chunked body that never ends), `huge` (a declared body far over any
cap, streamed), `redirect` (Location header). `server.hits` counts requests per path.
"""

from __future__ import annotations

import io
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
from PIL import Image


@dataclass
class Route:
    """What the server answers on one path."""

    status: int = 200
    body: bytes = b""
    content_type: str | None = "text/html; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)
    kind: str = "plain"  # plain | slow | endless | huge | redirect
    location: str = ""
    delay: float = 0.0


class _Handler(BaseHTTPRequestHandler):
    server: LoopbackServer  # type: ignore[assignment]
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        self.server.hits[path] += 1
        route = self.server.routes.get(path) or Route(404, b"<h1>not here</h1>")
        with suppress(BrokenPipeError, ConnectionResetError):
            self._answer(route)

    def _answer(self, route: Route) -> None:
        if route.kind == "slow":
            time.sleep(route.delay)
        self.send_response(route.status)
        if route.content_type is not None:
            self.send_header("Content-Type", route.content_type)
        for k, v in route.headers:
            self.send_header(k, v)
        if route.kind == "redirect":
            self.send_header("Location", route.location)
        if route.kind == "endless":
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            chunk = b"<p>" + b"x" * 1000 + b"</p>"
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not self.server.stopping:
                self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                self.wfile.flush()
                time.sleep(route.delay)
            return
        if route.kind == "huge":
            size = 1 << 34
            self.send_header("Content-Length", str(size))
            self.end_headers()
            block = b"\0" * 65536
            for _ in range(size // len(block)):
                if self.server.stopping:
                    return
                self.wfile.write(block)
            return
        self.send_header("Content-Length", str(len(route.body)))
        self.end_headers()
        self.wfile.write(route.body)


class LoopbackServer(ThreadingHTTPServer):
    """ThreadingHTTPServer on 127.0.0.1 with a route table."""

    daemon_threads = True
    request_queue_size = 256

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.routes: dict[str, Route] = {}
        self.hits: Counter[str] = Counter()
        self.stopping = False

    @property
    def base(self) -> str:
        """`http://127.0.0.1:PORT`."""
        return f"http://127.0.0.1:{self.server_address[1]}"

    def url(self, path: str) -> str:
        """An absolute URL on this server."""
        return self.base + path


@contextmanager
def loopback_server() -> Iterator[LoopbackServer]:
    """Start the server in a thread; stopped on exit."""
    server = LoopbackServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stopping = True
        server.shutdown()
        server.server_close()


def jpeg_bytes(seed: int = 0, size: int = 64) -> bytes:
    """A small JPEG with a smooth random pattern (hashable by PDQ: quality above the floor)."""
    rng = np.random.default_rng(seed)
    low = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    img = Image.fromarray(low).resize((size, size), Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def mp4_bytes(tmp: Path, seed: int = 1) -> bytes:
    """A short MP4 (6 frames) made with PyAV."""
    from media_corpus import make_video

    rng = np.random.default_rng(seed)
    low = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    frame = np.asarray(Image.fromarray(low).resize((64, 64), Image.Resampling.BICUBIC))
    path = make_video(tmp / f"clip{seed}.mp4", [frame] * 6, fps=5)
    return path.read_bytes()


def page(*media: str, og: str | None = None, extra: str = "") -> bytes:
    """An HTML page embedding the media paths (videos as <video><source>, images as <img>)."""
    parts = ["<!doctype html><html><head><title>t</title>"]
    if og:
        parts.append(f'<meta property="og:image" content="{og}">')
    parts.append("</head><body>")
    for m in media:
        if m.endswith(".mp4"):
            parts.append(f'<video controls><source src="{m}" type="video/mp4"></video>')
        else:
            parts.append(f'<img src="{m}" alt="">')
    parts.append(extra + "</body></html>")
    return "".join(parts).encode()
