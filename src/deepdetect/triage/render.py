"""The triage page: one self-contained HTML file (inline CSS and JS, images as data URIs, nothing fetched).

Every text taken from records, run headers or files is untrusted and goes through `esc` (HTML-escaped, and made
valid UTF-8 first). A Content-Security-Policy in the page forbids any network load as a second line of defence.
Rows come sorted (`summary.sort_key`); the first `top_n` carry their thumbnail, provenance, score strip and
explanation, the rest are compact rows, so a 10,000-file batch stays a page a browser opens in seconds.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from deepdetect.triage.summary import BORDERLINE, STRONG, Summary, certainty
from deepdetect.triage.thumbs import Thumb
from deepdetect.utils.paths import printable_text

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'; base-uri 'none'"

CSS = """
*{box-sizing:border-box}
body{font:13px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d1d1f;background:#fafafa}
header,section{padding:10px 18px}
h1{font-size:20px;margin:6px 0}h2{font-size:15px;margin:12px 0 6px}
.warn{background:#fff1f0;border:2px solid #c62828;color:#8e0000;padding:8px 12px;margin:6px 0;border-radius:4px}
.note{background:#f3f6ff;border:1px solid #9fb3e6;padding:6px 12px;margin:6px 0;border-radius:4px}
.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px 12px;min-width:220px}
.card table td{padding:1px 8px 1px 0;vertical-align:top}
.count{display:inline-block;margin:2px 8px 2px 0}
#controls{position:sticky;top:0;background:#fafafa;border-bottom:1px solid #ccc;z-index:2;display:flex;gap:12px;
 align-items:center;flex-wrap:wrap}
#controls input[type=search]{width:280px}
#files{background:#fff}
.row{display:grid;grid-template-columns:250px minmax(160px,2fr) 54px 110px 130px 150px 74px minmax(160px,2fr);
 border-bottom:1px solid #e3e3e3;content-visibility:auto;contain-intrinsic-size:auto 190px}
.row>div{padding:4px 6px;min-width:0}
.row[hidden]{display:none}
.row.head{position:sticky;top:38px;background:#eee;font-weight:600;z-index:1;content-visibility:visible}
.row.compact{contain-intrinsic-size:auto 34px;font-size:12px}.row.compact>div{padding:1px 6px}
.name{font-weight:600;word-break:break-all}.path{color:#666;font-size:11px;word-break:break-all}
.sha{font:11px ui-monospace,monospace;word-break:break-all;overflow-wrap:anywhere;max-width:140px}
.score{font:15px ui-monospace,monospace;white-space:nowrap}
.fake{color:#fff;background:#c62828;border-radius:3px;padding:0 4px}
.real{color:#fff;background:#2e7d32;border-radius:3px;padding:0 4px}
.st-ok{color:#2e7d32}.st-no_face{color:#8a6d00}.st-skip{color:#666}.st-bad{color:#b71c1c;font-weight:600}
.err{color:#b71c1c;font-size:11px;word-break:break-word;max-width:320px}
.thumb{width:244px}.thumb img{display:block;max-width:240px;border:1px solid #ccc}
.ph{width:160px;height:90px;display:flex;align-items:center;justify-content:center;text-align:center;
 background:repeating-linear-gradient(45deg,#eee,#eee 6px,#f8f8f8 6px,#f8f8f8 12px);color:#666;font-size:11px;
 border:1px dashed #bbb;padding:4px}
.prov{font-size:11px;color:#333}.prov b{font-weight:600}
.match{background:#fff3e0;border:1px solid #ef6c00;padding:2px 4px;font-size:11px;overflow-wrap:anywhere}
.trust{background:#fff8e1;border:3px solid #e65100;color:#5d2a00;padding:8px 12px;margin:6px 0;border-radius:4px}
.words{font-size:12px;font-weight:600}
#numbers{margin:6px 0}#numbers dt{font-weight:600;margin-top:4px}#numbers dd{margin:0 0 0 16px}
.expl img{max-width:320px;min-width:160px;image-rendering:auto;border:1px solid #ccc}
svg.strip{display:block;margin-top:4px;background:#fcfcfc;border:1px solid #ddd}
.small{font-size:11px;color:#555}
"""

JS = """
(function () {
  var rows = Array.prototype.slice.call(document.querySelectorAll('#files .row[data-status]'));
  var st = document.getElementById('f-status'), lb = document.getElementById('f-label');
  var q = document.getElementById('f-q'), shown = document.getElementById('shown');
  function apply() {
    var t0 = performance.now(), s = st.value, l = lb.value, t = q.value.trim().toLowerCase(), n = 0;
    for (var i = 0; i < rows.length; i++) {
      var r = rows[i], d = r.dataset;
      var ok = (!s || d.status === s) && (!l || d.label === l) && (!t || d.q.indexOf(t) !== -1);
      r.hidden = !ok;
      if (ok) n++;
    }
    shown.textContent = n + ' of ' + rows.length + ' files shown';
    document.body.setAttribute('data-filter-ms', (performance.now() - t0).toFixed(1));
    var h = [];
    if (s) h.push('status=' + encodeURIComponent(s));
    if (l) h.push('label=' + encodeURIComponent(l));
    if (t) h.push('q=' + encodeURIComponent(t));
    if (history.replaceState) history.replaceState(null, '', h.length ? '#' + h.join('&') : location.pathname);
  }
  function fromHash() {
    var parts = location.hash.replace(/^#/, '').split('&');
    for (var i = 0; i < parts.length; i++) {
      var kv = parts[i].split('='), v = kv.length > 1 ? decodeURIComponent(kv[1]) : '';
      if (kv[0] === 'status') st.value = v;
      if (kv[0] === 'label') lb.value = v;
      if (kv[0] === 'q') q.value = v;
    }
  }
  var timer = null;
  st.addEventListener('change', apply);
  lb.addEventListener('change', apply);
  q.addEventListener('input', function () { clearTimeout(timer); timer = setTimeout(apply, 150); });
  try { fromHash(); } catch (e) {}
  apply();
  document.body.setAttribute('data-ready', '1');
})();
"""


def esc(value: Any) -> str:
    """Untrusted text as HTML text or attribute value: valid UTF-8, every markup character escaped."""
    return html.escape(printable_text(str(value)), quote=True)


@dataclass
class RowExtras:
    """What the renderer embeds for one of the top rows (computed by the caller from the file itself)."""

    thumb: Thumb | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    explanation: Thumb | None = None


def _fmt_score(x: float | None) -> str:
    return "–" if x is None else f"{x:.3f}"


def _fmt_size(n: Any) -> str:
    if not isinstance(n, int | float) or isinstance(n, bool):
        return "–"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def display_name(rec: Mapping[str, Any]) -> str:
    """The file's name as given (`name`), else the last part of its path."""
    name = rec.get("name")
    if isinstance(name, str) and name:
        return name
    path = str(rec.get("abs_path") or rec.get("path") or "")
    return path.replace("\\", "/").rsplit("/", 1)[-1] or "(no path)"


def frame_scores(faces: Sequence[Mapping[str, Any]]) -> list[tuple[float, float, bool]]:
    """Per frame: (time or frame index, max face score, whether the x is seconds), sorted by x."""
    per: dict[float, float] = {}
    seconds = all(f.get("time_s") is not None for f in faces) and bool(faces)
    for f in faces:
        score = f.get("score")
        x = f.get("time_s") if seconds else f.get("frame_index")
        if score is None or x is None:
            continue
        per[float(x)] = max(per.get(float(x), 0.0), float(score))
    return [(x, s, seconds) for x, s in sorted(per.items())]


def score_interval(rec: Mapping[str, Any]) -> tuple[list[float] | None, str]:
    """The lowest and highest frame score of a video (the record's `score_interval`, else from its faces) and
    what to call it; not a confidence interval."""
    interval = rec.get("score_interval")
    points = frame_scores(rec.get("faces") or [])
    if not interval and rec.get("kind") == "video" and len(points) > 1:
        scores = [s for _, s, _ in points]
        interval = [min(scores), max(scores)]
    if not interval or (rec.get("kind") == "image" and interval[0] == interval[1]):
        return None, ""
    return list(interval), "frame scores min–max"


def score_strip(rec: Mapping[str, Any], width: int = 240, height: int = 56) -> str:
    """Inline SVG: each sampled frame's max face score over time, with the threshold as a dashed line."""
    points = frame_scores(rec.get("faces") or [])
    if len(points) < 1:
        return ""
    pad_l, pad_r, pad_t, pad_b = 4, 4, 4, 14
    xs = [x for x, _, _ in points]
    lo, hi = min(xs), max(xs)
    span = (hi - lo) or 1.0
    plot_w, plot_h = width - pad_l - pad_r, height - pad_t - pad_b

    def px(x: float) -> float:
        return pad_l + (plot_w / 2 if hi == lo else (x - lo) / span * plot_w)

    def py(s: float) -> float:
        return pad_t + (1 - s) * plot_h

    unit = "s" if points[0][2] else ""
    fmt = (lambda v: f"{v:.1f} s") if unit else (lambda v: f"frame {v:.0f}")
    thr = rec.get("threshold")
    parts = [
        f'<svg class="strip" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        'role="img" aria-label="per-frame score">'
    ]
    if isinstance(thr, int | float):
        y = py(float(thr))
        parts.append(
            f'<line x1="{pad_l}" x2="{width - pad_r}" y1="{y:.1f}" y2="{y:.1f}" stroke="#c62828" '
            f'stroke-dasharray="3,2" stroke-width="1"><title>threshold {float(thr):.3f}</title></line>'
        )
    if len(points) > 1:
        poly = " ".join(f"{px(x):.1f},{py(s):.1f}" for x, s, _ in points)
        parts.append(f'<polyline points="{poly}" fill="none" stroke="#555" stroke-width="1"/>')
    for x, s, _ in points:
        fake = isinstance(thr, int | float) and s >= float(thr)
        colour = "#c62828" if fake else "#2e7d32"
        parts.append(
            f'<circle cx="{px(x):.1f}" cy="{py(s):.1f}" r="2.2" fill="{colour}"><title>{esc(fmt(x))}: '
            f"{s:.3f}</title></circle>"
        )
    parts.append(
        f'<text x="{pad_l}" y="{height - 2}" font-size="9" fill="#555">{esc(fmt(lo))}</text>'
        f'<text x="{width - pad_r}" y="{height - 2}" font-size="9" fill="#555" text-anchor="end">{esc(fmt(hi))}</text>'
        "</svg>"
    )
    return "".join(parts)


PROVENANCE_FIELDS = (
    ("format", "container"),
    ("codec", "codec"),
    ("encoder", "encoder"),
    ("software", "software"),
    ("exif_software", "EXIF software"),
    ("exif_make", "EXIF make"),
    ("exif_model", "EXIF model"),
    ("exif_datetime_original", "EXIF taken"),
    ("exif_datetime", "EXIF date"),
    ("creation_time", "created"),
    ("major_brand", "brand"),
    ("handler", "handler"),
    ("generator_parameters", "generator parameters"),
    ("generator_prompt", "generator prompt"),
    ("comment", "comment"),
)


def _provenance_html(prov: Mapping[str, Any]) -> str:
    if not prov:
        return ""
    items = [f"<b>{esc(label)}</b>: {esc(prov[key])}" for key, label in PROVENANCE_FIELDS if prov.get(key)]
    c2pa = prov.get("c2pa")
    if c2pa is not None:
        how = f' title="{esc(prov.get("c2pa_checked", ""))}; presence only, signature not verified"'
        items.append(f"<b{how}>C2PA</b>: {'present' if c2pa else 'none'}")
    if prov.get("error"):
        items.append(f'<span class="err">{esc(prov["error"])}</span>')
    return '<div class="prov">' + "<br>".join(items) + "</div>"


def _media_facts(rec: Mapping[str, Any], prov: Mapping[str, Any]) -> str:
    bits = []
    w, h = prov.get("width"), prov.get("height")
    if w and h:
        bits.append(f"{esc(w)}×{esc(h)}")
    dur = prov.get("duration_s")
    if isinstance(dur, int | float) and rec.get("kind") == "video":
        bits.append(f"{dur:.1f} s")
    if prov.get("fps"):
        bits.append(f"{esc(prov['fps'])} fps")
    if rec.get("n_frames"):
        bits.append(f"{esc(rec['n_frames'])} frames sampled" if rec.get("kind") == "video" else "")
    if rec.get("n_faces") is not None and rec.get("status") in ("ok", "no_face"):
        bits.append(f"{esc(rec['n_faces'])} faces")
    return "<br>".join(b for b in bits if b)


def _short(value: Any, keep: int = 16) -> str:
    """A long reference (e.g. a 64-hex sha256) cut to `keep` characters, whole on hover."""
    text = str(value)
    if len(text) <= keep + 4:
        return esc(text)
    return f'<span title="{esc(text)}">{esc(text[:keep])}…</span>'


def _match_html(match: Any) -> str:
    if not isinstance(match, Mapping) or not match:
        return ""
    shown = [("label", match.get("label")), ("source", match.get("source"))]
    bits = [f"<b>{esc(k)}</b>: {esc(v)}" for k, v in shown if v not in (None, "")]
    if match.get("ref") is not None:
        bits.append(f"<b>ref</b>: {_short(match['ref'])}")
    for key in ("distance", "via", "query_share"):
        if match.get(key) is not None:
            bits.append(f"{esc(key)}: {esc(match[key])}")
    body = ", ".join(bits) or esc(json.dumps(match)[:200])
    return f'<div class="match"><b>known content</b> — {body}</div>'


def _status_class(status: str) -> str:
    return {"ok": "st-ok", "no_face": "st-no_face", "skipped": "st-skip"}.get(status, "st-bad")


def _score_cell(rec: Mapping[str, Any]) -> str:
    label = rec.get("label")
    badge = f' <span class="{"fake" if label == "fake" else "real"}">{esc(label)}</span>' if label else ""
    out = f'<span class="score">{_fmt_score(rec.get("score"))}</span>{badge}'
    words = certainty(dict(rec))
    if words:
        out += f'<div class="words">{esc(words)}</div>'
    interval, what = score_interval(rec)
    if interval:
        out += f'<div class="small">{esc(what)} [{interval[0]:.2f}–{interval[1]:.2f}]</div>'
    if rec.get("aggregate"):
        out += f'<div class="small">aggregate: {esc(rec["aggregate"])}</div>'
    return out


def _row(rec: Mapping[str, Any], extras: RowExtras | None) -> str:
    status = str(rec.get("status"))
    label = str(rec.get("label") or "none")
    name = display_name(rec)
    path = str(rec.get("abs_path") or rec.get("path") or "")
    sha = str(rec.get("sha256") or "")
    search = esc(f"{name} {path} {sha}".lower())
    prov = extras.provenance if extras else (rec.get("provenance") or {})
    size = rec.get("size_bytes") if rec.get("size_bytes") is not None else prov.get("size_bytes")
    error = f'<div class="err">{esc(rec["error"])}</div>' if rec.get("error") else ""
    attrs = f'data-status="{esc(status)}" data-label="{esc(label)}" data-q="{search}"'
    status_html = f'<span class="{_status_class(status)}">{esc(status)}</span>{error}'
    name_html = f'<div class="name">{esc(name)}</div>' + (
        f'<div class="path">{esc(path)}</div>' if path != name else ""
    )
    if extras is None:
        return (
            f'<div class="row compact" role="row" {attrs}><div class="small">not embedded</div><div>{name_html}'
            f"{_match_html(rec.get('known_match'))}</div>"
            f"<div>{esc(rec.get('kind') or '–')}</div><div>{status_html}</div><div>{_score_cell(rec)}</div>"
            f'<div class="sha" title="{esc(sha)}">{esc(sha[:16])}{"…" if len(sha) > 16 else ""}</div>'
            f"<div>{_fmt_size(size)}</div><div></div></div>"
        )
    thumb = extras.thumb
    if thumb is not None and thumb.uri:
        cap = f'<div class="small">{esc(thumb.caption)}</div>' if thumb.caption else ""
        thumb_html = f'<img src="{thumb.uri}" width="{thumb.width}" height="{thumb.height}" alt="thumbnail">{cap}'
    else:
        thumb_html = f'<div class="ph">{esc(thumb.note if thumb else "no thumbnail")}</div>'
    strip = score_strip(rec) if rec.get("kind") == "video" else ""
    expl = ""
    if extras.explanation is not None:
        if extras.explanation.uri:
            expl = (
                f'<div class="expl"><div class="small">explanation</div><img src="{extras.explanation.uri}" '
                f'alt="explanation"></div>'
            )
        else:
            expl = f'<div class="small">{esc(extras.explanation.note)}</div>'
    facts = _media_facts(rec, prov)
    details = (f'<div class="small">{facts}</div>' if facts else "") + _provenance_html(prov)
    return (
        f'<div class="row" role="row" {attrs}><div class="thumb">{thumb_html}{strip}</div>'
        f"<div>{name_html}{_match_html(rec.get('known_match'))}{expl}</div>"
        f"<div>{esc(rec.get('kind') or '–')}</div><div>{status_html}</div><div>{_score_cell(rec)}</div>"
        f'<div class="sha">{esc(sha) or "–"}</div><div>{_fmt_size(size)}</div><div>{details}</div></div>'
    )


def _kv_table(pairs: Sequence[tuple[str, Any]]) -> str:
    rows = "".join(f"<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>" for k, v in pairs if v not in (None, "", []))
    return f"<table>{rows}</table>"


def _training_data_text(data: Any) -> str:
    if isinstance(data, str):
        return data
    if not isinstance(data, Mapping):
        return ""
    bits = []
    sources = data.get("sources")
    if isinstance(sources, Mapping):
        for name, counts in list(sources.items())[:20]:
            if isinstance(counts, Mapping):
                bits.append(f"{name} ({', '.join(f'{k} {v}' for k, v in counts.items())})")
            else:
                bits.append(str(name))
    if data.get("sbi") not in (None, "off", False):
        bits.append(f"SBI: {data['sbi']}")
    if not bits:
        bits = [f"{k}: {v}" for k, v in data.items() if isinstance(v, str | int | float)][:6]
    return "; ".join(bits)


def _rate(x: Any) -> str | None:
    return f"{x:.3f}" if isinstance(x, int | float) and not isinstance(x, bool) else None


def _summary_html(s: Summary, title: str, n_embedded: int) -> str:
    model, op, run = s.model, s.operating_point, s.run
    counts = "".join(
        f'<span class="count"><span class="{_status_class(k)}">{esc(k)}</span> {v}</span>'
        for k, v in s.statuses.most_common()
    )
    labels = "".join(f'<span class="count">{esc(k)} {v}</span>' for k, v in s.labels.most_common()) or "none"
    kinds = ", ".join(f"{esc(k)} {v}" for k, v in s.kinds.most_common())
    model_table = _kv_table(
        [
            ("name", model.get("name")),
            ("version", model.get("version")),
            ("training data", _training_data_text(model.get("training_data"))),
            ("calibrated threshold", _rate(model.get("threshold"))),
            ("threshold rule", model.get("threshold_rule")),
            ("validation FPR at it", _rate(model.get("val_fpr"))),
            ("validation TPR at it", _rate(model.get("val_tpr"))),
        ]
    )
    op_table = _kv_table(
        [
            ("threshold used", _rate(op.get("threshold"))),
            ("chosen by", op.get("source")),
            ("target FPR", _rate(op.get("target_fpr"))),
            ("validation FPR", _rate(op.get("val_fpr"))),
            ("validation TPR", _rate(op.get("val_tpr"))),
        ]
    )
    run_table = _kv_table(
        [
            ("run id", run.get("run_id")),
            ("started", run.get("started")),
            ("finished", run.get("finished")),
            ("tool version", run.get("tool_version")),
        ]
    )
    trust = ""
    if s.trust:
        items = "".join(f"<li>{esc(t)}</li>" for t in s.trust)
        trust = (
            '<div class="trust" id="trust"><b>Do not take this model\'s labels at face value.</b> Its own '
            f'validation says:<ul>{items}</ul><a href="#numbers">What the numbers mean</a></div>'
        )
    warnings = trust + "".join(f'<div class="warn">⚠ {esc(w)}</div>' for w in s.warnings)
    notes = "".join(f'<div class="note">{esc(n)}</div>' for n in s.notes)
    return (
        f"<header><h1>{esc(title)}</h1>{warnings}{notes}</header><section class='cards'>"
        f'<div class="card"><h2>Files: {s.n_files}</h2><div>known content matches: <b>{s.known}</b></div>'
        f"<div>status: {counts or 'none'}</div>"
        f"<div>label: {labels}</div><div>kind: {kinds or 'none'}</div>"
        f'<div class="small">known-content matches first; then rows by score, highest first; files without a '
        f"score follow, failures last. The first {n_embedded} rows carry thumbnails and metadata.</div></div>"
        f'<div class="card"><h2>Model</h2>{model_table}</div>'
        f'<div class="card"><h2>Operating point</h2>{op_table}'
        '<div class="small">score = calibrated probability that the face is synthetic, calibrated on the '
        "model's validation mix (not your batch); label 'fake' when score ≥ threshold.</div></div>"
        f'<div class="card"><h2>Run</h2>{run_table}</div></section>{numbers_html()}'
    )


def numbers_html() -> str:
    """The page's own "what the numbers mean" section (the same text as docs/numbers.md, in short)."""
    items = [
        ("score", "the calibrated probability that the face content is synthetic, on the model's validation mix "
         "(not your batch). A video scores the aggregate of its frames' highest face scores."),
        ("label", "fake when score ≥ threshold, else real; no label when the file has no score."),
        ("words next to the score", f"very likely fake: score ≥ {STRONG:g} and over the threshold; likely fake: "
         f"over the threshold; borderline: within {BORDERLINE:g} under it; likely real: under that; very likely "
         f"real: score ≤ {1 - STRONG:g}. In a video, “k of n frames strongly fake” counts sampled frames whose "
         f"highest face score is ≥ {STRONG:g} (and over the threshold)."),
        ("frame scores min–max", "the lowest and the highest frame score of a video: how much the frames disagree. "
         "It is not a confidence interval."),
        ("threshold, validation FPR / TPR", "the cut between real and fake, and the share of the model's own "
         "validation reals (FPR) and fakes (TPR) it labelled fake there. A validation set of n reals cannot vouch "
         "for an FPR under about 3/n."),
        ("known content", "the file's perceptual hash matched an entry of the hash index: label and source are the "
         "entry's; distance is the number of differing hash bits (0: identical)."),
    ]  # fmt: skip
    body = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in items)
    return (
        '<section><details id="numbers"><summary>What the numbers mean</summary>'
        f'<dl>{body}</dl><div class="small">In full: docs/numbers.md of deepdetect.</div></details></section>'
    )


def _controls(s: Summary) -> str:
    statuses = "".join(f'<option value="{esc(k)}">{esc(k)} ({v})</option>' for k, v in s.statuses.most_common())
    n_none = s.n_files - sum(s.labels.values())
    labels = "".join(f'<option value="{esc(k)}">{esc(k)} ({v})</option>' for k, v in s.labels.most_common())
    if n_none:
        labels += f'<option value="none">no label ({n_none})</option>'
    return (
        '<section id="controls"><label>status <select id="f-status"><option value="">all</option>'
        f'{statuses}</select></label><label>label <select id="f-label"><option value="">all</option>{labels}'
        '</select></label><label>search <input id="f-q" type="search" placeholder="name, path or sha256">'
        f'</label><span id="shown">{s.n_files} files</span></section>'
    )


def render_page(
    records: Sequence[Mapping[str, Any]],
    summary: Summary,
    extras: Sequence[RowExtras | None],
    title: str = "deepdetect triage report",
) -> str:
    """The whole page: summary, filters, one row per record (records already sorted; `extras[i]` for row i)."""
    n_embedded = sum(e is not None for e in extras)
    rows = "\n".join(_row(rec, extras[i] if i < len(extras) else None) for i, rec in enumerate(records))
    head = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="referrer" content="no-referrer"><meta name="viewport" content="width=device-width">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
    )
    heads = ("preview", "file", "kind", "status", "score", "sha256", "size", "media and provenance")
    table = (
        '<div id="files" role="table"><div class="row head" role="row">'
        + "".join(f'<div role="columnheader">{h}</div>' for h in heads)
        + f"</div>\n{rows}\n</div>"
    )
    return (
        head
        + _summary_html(summary, title, n_embedded)
        + _controls(summary)
        + table
        + f"<script>{JS}</script></body></html>"
    )
