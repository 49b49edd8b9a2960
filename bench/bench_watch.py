"""deepdetect-watch: URLs checked per second and peak memory, 10,000 URLs on a loopback server in one run.

The server runs in a child process (its CPU is not the checker's GIL): each page embeds one of 50 small JPEGs, so
a URL's check is two requests (page + picture), two WARC response/request pairs, PDQ of the picture and one store
transaction. The check itself runs in another child process so its peak RSS (ru_maxrss) is its own. Model off at
full size; with a tiny random-init ONNX detector (test_efficientnet, 64 px) on a smaller count, since every
picture then goes through face detection and the model. Limits: 8 workers, 8 requests at once per host, no
per-host rate limit (all URLs share the host 127.0.0.1).

    python bench/bench_watch.py               # both figures, printed
    python bench/run.py --only watch          # -> bench/results/watch.json
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tempfile
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
N_IMAGES = 50
WORKERS = 8


def _images() -> list[bytes]:
    import numpy as np
    from PIL import Image

    out = []
    for seed in range(N_IMAGES):
        rng = np.random.default_rng(seed)
        low = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        buf = io.BytesIO()
        Image.fromarray(low).resize((128, 128), Image.Resampling.BICUBIC).save(buf, format="JPEG", quality=85)
        out.append(buf.getvalue())
    return out


def serve(port_file: str) -> None:
    """Child process: serve /p/<i>.html (embedding /m/<i % 50>.jpg) and the pictures on 127.0.0.1."""
    images = _images()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            name = self.path.rsplit("/", 1)[-1]
            stem = name.split(".", 1)[0]
            if self.path.startswith("/p/") and stem.isdigit():
                body = f'<html><body><h1>{stem}</h1><img src="/m/{int(stem) % N_IMAGES}.jpg"></body></html>'.encode()
                ctype = "text/html; charset=utf-8"
            elif self.path.startswith("/m/") and stem.isdigit() and int(stem) < N_IMAGES:
                body, ctype = images[int(stem)], "image/jpeg"
            else:
                body, ctype = b"not found", "text/plain"
                self.send_response(404)
            if ctype != "text/plain":
                self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 512

    server = Server(("127.0.0.1", 0), Handler)
    Path(port_file).write_text(str(server.server_address[1]))
    server.serve_forever()


def check(store: str, base: str, n: int, model: str | None) -> None:
    """Child process: add n URLs, check them all in one pass, print the figures as JSON."""
    import resource

    from deepdetect.watch.api import CheckOptions, check_store
    from deepdetect.watch.store import NewUrl, Store

    with Store(store, create=True) as st:
        st.add_urls(
            (NewUrl(f"{base}/p/{i}.html", f"{base}/p/{i}.html", "127.0.0.1", "127.0.0.1") for i in range(n)),
            "bench",
            "bench",
        )
    opts = CheckOptions(allow_hosts=("127.0.0.1",), workers=WORKERS, per_host=WORKERS, host_rate=0.0, model=model)
    start, cpu0 = time.perf_counter(), _cpu_self()
    counts = check_store(store, opts, due_only=True)
    seconds, cpu = time.perf_counter() - start, _cpu_self() - cpu0
    evidence = Path(store + ".evidence")
    warc_bytes = sum(p.stat().st_size for p in evidence.rglob("*.warc.gz"))
    print(
        json.dumps(
            {
                "urls": n,
                "statuses": dict(counts),
                "seconds": round(seconds, 2),
                "urls_per_s": round(n / seconds, 1),
                "check_cpu_s": round(cpu, 2),
                "urls_per_cpu_s": round(n / cpu, 1) if cpu > 0 else None,
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "warc_mb": round(warc_bytes / 2**20, 2),
                "store_mb": round(Path(store).stat().st_size / 2**20, 2),
            }
        )
    )


def _cpu_self() -> float:
    import resource

    use = resource.getrusage(resource.RUSAGE_SELF)
    return use.ru_utime + use.ru_stime


def _cpu_of(pid: int) -> float:
    """User + system CPU seconds of a running process (Linux /proc), 0 where unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def _tiny_model(root: Path) -> Path:
    from omegaconf import OmegaConf

    from deepdetect.export.pipeline import export
    from deepdetect.models.checkpoint import save_detector
    from deepdetect.models.detector import create_detector, resolve_preprocess

    model = create_detector("test_efficientnet", img_size=64).eval()
    meta = {
        "model": {"name": "test_efficientnet", "head": "linear", "img_size": 64},
        "preprocess": resolve_preprocess(model, 64).to_dict(),
        "face_crop": {"detector": "mtcnn", "margin": 0.3, "size": 64},
        "output": {"type": "logit", "positive_class": "fake"},
        "calibration": {"temperature": 1.0, "threshold": 0.5, "threshold_rule": "fixed"},
        "val_metrics": {},
        "training_data": {},
        "config": {},
        "code_version": "bench",
    }
    ckpt = save_detector(model, root / "run" / "model.safetensors", meta)
    cfg = {
        "checkpoint": str(ckpt),
        "output_dir": str(root / "export"),
        "opset": 18,
        "dynamic_batch": True,
        "model_version": None,
        "parity": {"manifest": None, "n": 2, "atol": 1e-4},
        "quantize": {"int8": False, "fp16": False, "calibration_n": 2},
    }
    export(OmegaConf.create(cfg))
    return root / "export" / "model.onnx"


def _measure(root: Path, base: str, n: int, model: Path | None, label: str) -> dict[str, Any]:
    store = root / f"{label}.db"
    args = [sys.executable, str(Path(__file__)), "check", str(store), base, str(n), str(model or "")]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"{label}: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(out_dir: Path, quick: bool) -> dict[str, Any]:
    """Model off: 10,000 URLs (quick: 1,000); model on: 300 URLs (quick: 50)."""
    n_off, n_on = (1_000, 50) if quick else (10_000, 300)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        port_file = root / "port"
        server = subprocess.Popen([sys.executable, str(Path(__file__)), "serve", str(port_file)])
        try:
            for _ in range(300):
                if port_file.exists() and port_file.read_text():
                    break
                time.sleep(0.1)
            base = f"http://127.0.0.1:{port_file.read_text()}"
            figures: dict[str, Any] = {
                "load_avg_1m_before": round(os.getloadavg()[0], 2),
                "cpu_count": os.cpu_count(),
                "workers": WORKERS,
                "model_off": _measure(root, base, n_off, None, "off"),
                "server_cpu_s_after_model_off": round(_cpu_of(server.pid), 2),
                "model_on": _measure(root, base, n_on, _tiny_model(root), "on"),
                "load_avg_1m_after": round(os.getloadavg()[0], 2),
            }
        finally:
            server.terminate()
            server.wait(timeout=30)
    return figures


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        serve(sys.argv[2])
    elif len(sys.argv) > 1 and sys.argv[1] == "check":
        check(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5] or None)
    else:
        print(json.dumps(run(HERE / "results", "--quick" in sys.argv), indent=2))
