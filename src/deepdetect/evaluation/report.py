"""Render evaluation results as one self-contained HTML file (plots embedded as base64 PNG data URIs)."""

from __future__ import annotations

import base64
import html
import io
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from deepdetect.evaluation.metrics import reliability_bins
from deepdetect.utils.io import atomic_write_text

if TYPE_CHECKING:
    from matplotlib.figure import Figure


log = logging.getLogger(__name__)

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:13px;max-width:100%}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:right;overflow-wrap:anywhere}th{background:#f2f2f2}
.wide{overflow-x:auto;max-width:100%}.note{color:#555;font-size:13px}
td:first-child,th:first-child{text-align:left}
.warn{background:#fff0f0;border:2px solid #c00;padding:.6em 1em;margin:1em 0;color:#900}
.ok{background:#f0fff0;border:1px solid #090;padding:.4em 1em}
img{max-width:100%}.grid{display:flex;flex-wrap:wrap;gap:12px}.grid figure{margin:0;font-size:12px}
figure.pair figcaption{max-width:100%}.pair .labels{display:flex;justify-content:space-around;font-weight:bold}
pre{background:#f6f6f6;padding:1em;white-space:pre-wrap;overflow-wrap:anywhere;font-size:12px}
"""


def _manifest_text(value: Any) -> str:
    """One manifest path, or several joined (a model trained on several crop folders)."""
    return ", ".join(map(str, value)) if isinstance(value, list | tuple) else str(value)


def fig_to_data_uri(fig: Figure) -> str:
    """PNG bytes of a matplotlib figure as a data URI (closes the figure)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def array_to_data_uri(img: np.ndarray) -> str:
    """An HxWx3 uint8 image as a PNG data URI."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _img(uri: str, alt: str) -> str:
    return f'<img src="{uri}" alt="{html.escape(alt)}">'


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return "–" if not np.isfinite(v) else f"{v:.4f}"
    if isinstance(v, list | tuple) and len(v) == 2 and all(isinstance(x, float | int | None) for x in v):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return html.escape(str(v))


def table(rows: list[dict[str, Any]], highlight: list[bool] | None = None) -> str:
    """An HTML table from a list of dicts (columns from the first row)."""
    if not rows:
        return "<p><i>no rows</i></p>"
    cols = list(rows[0].keys())
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)
    body = []
    for i, r in enumerate(rows):
        style = ' style="background:#ffe0e0"' if highlight and highlight[i] else ""
        body.append(f"<tr{style}>" + "".join(f"<td>{_fmt(r.get(c))}</td>" for c in cols) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def key_value_table(rows: list[dict[str, Any]], label_keys: tuple[str, ...] = ("run", "manifest")) -> str:
    """The rows of a wide table as columns: one line per metric, one column per row (labelled by `label_keys`),
    so a summary with many metrics reads top to bottom instead of scrolling sideways."""
    if not rows:
        return "<p><i>no rows</i></p>"
    labels = [" / ".join(str(r.get(k, "")) for k in label_keys) for r in rows]
    head = "<th>metric</th>" + "".join(f"<th>{html.escape(lab)}</th>" for lab in labels)
    keys = [k for k in rows[0] if k not in label_keys]
    body = "".join(
        f"<tr><td>{html.escape(str(k))}</td>" + "".join(f"<td>{_fmt(r.get(k))}</td>" for r in rows) + "</tr>"
        for k in keys
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def one_class_reason(row: dict[str, Any]) -> str | None:
    """Why a group's AUC is undefined: it holds only real or only fake crops (None when it has both)."""
    n_real, n_fake = row.get("n_real"), row.get("n_fake")
    if n_real is None or n_fake is None:
        return None
    if int(n_fake) == 0 and int(n_real) > 0:
        return "only real"
    if int(n_real) == 0 and int(n_fake) > 0:
        return "only fake"
    return None


def _with_reasons(row: dict[str, Any]) -> dict[str, Any]:
    """Replace an undefined AUC/AP/EER by `– (only real)` / `– (only fake)` when that is the reason."""
    reason = one_class_reason(row)
    if reason is None:
        return row
    out = dict(row)
    for key in ("auc", "ap", "eer"):
        if key in out and (out[key] is None or (isinstance(out[key], float) and not np.isfinite(out[key]))):
            out[key] = f"– ({reason})"
    return out


_ONE_CLASS_NOTE = (
    "<p class='note'>AUC, AP and EER need both real and fake crops: a group with one class shows "
    "&ldquo;– (only real)&rdquo; or &ldquo;– (only fake)&rdquo;; its FPR or detection rate still applies.</p>"
)


def operating_point(y: np.ndarray, prob: np.ndarray, threshold: float) -> tuple[float, float]:
    """(FPR, TPR) when everything with P(fake) >= threshold is called fake."""
    flagged = prob >= threshold
    return float(flagged[y == 0].mean()), float(flagged[y == 1].mean())


def _curves(scores: pd.DataFrame, level: str, results: list[dict[str, Any]] | None = None) -> str:
    """ROC (with AUC and the stored threshold's operating point) and PR curves of every (run, manifest) at one
    level, as two embedded images."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import precision_recall_curve, roc_curve

    fig_roc, ax_roc = plt.subplots(figsize=(4.5, 4))
    fig_pr, ax_pr = plt.subplots(figsize=(4.5, 4))
    by_key = {(r["run"], r["manifest_name"]): r for r in results or []}
    sub = scores[(scores["level"] == level) & scores["prob"].notna()]
    for (run, man), g in sub.groupby(["run", "manifest"], sort=False):
        if g["y"].nunique() < 2:
            continue
        y, prob = g["y"].to_numpy(), g["prob"].to_numpy()
        fpr, tpr, _ = roc_curve(y, prob)
        prec, rec, _ = precision_recall_curve(y, prob)
        res = by_key.get((run, man))
        auc = res[level].get("auc") if res else None
        auc_text = f", AUC {auc:.3f}" if isinstance(auc, float) else ""
        (line,) = ax_roc.plot(fpr, tpr, label=f"{run} / {man}{auc_text}")
        if res:
            thr = float(res["calibration"]["threshold"])
            x_op, y_op = operating_point(y, prob, thr)
            ax_roc.plot([x_op], [y_op], "o", color=line.get_color(), ms=7, mec="k",
                        label=f"threshold {thr:.3f}: FPR {x_op:.3f}, TPR {y_op:.3f}")  # fmt: skip
        ax_pr.plot(rec, prec, label=f"{run} / {man}")
    ax_roc.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax_roc.set(xlabel="FPR (reals flagged fake)", ylabel="TPR (fakes detected)", title=f"ROC ({level})")
    ax_pr.set(xlabel="recall", ylabel="precision", title=f"Precision-recall ({level})")
    for ax in (ax_roc, ax_pr):
        if ax.lines:
            ax.legend(fontsize=7)
    return _img(fig_to_data_uri(fig_roc), f"ROC {level}") + _img(fig_to_data_uri(fig_pr), f"PR {level}")


def _hist_and_reliability(frames: pd.DataFrame, threshold: float) -> str:
    """Score histograms per class and the reliability diagram for one result."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 4))
    bins = [float(b) for b in np.linspace(0, 1, 31)]
    for y, name, colour in ((0, "real", "tab:blue"), (1, "fake", "tab:red")):
        ax.hist(frames.loc[frames["y"] == y, "prob"], bins=bins, alpha=0.6, label=name, color=colour)
    ax.axvline(threshold, color="k", ls="--", lw=1, label=f"threshold {threshold:.3f}")
    ax.set(xlabel="calibrated P(fake)", ylabel="crops", title="Score histogram per class")
    ax.legend(fontsize=8)
    hist = fig_to_data_uri(fig)
    rel = reliability_bins(frames["y"].to_numpy(), frames["prob"].to_numpy(), 10)
    fig, ax = plt.subplots(figsize=(4.5, 4))
    used = rel[rel["count"] > 0]
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.bar((used["lo"] + used["hi"]) / 2, used["frac_fake"], width=0.09, alpha=0.7, edgecolor="k")
    ax.plot(used["mean_prob"], used["frac_fake"], "o-", color="tab:red")
    ax.set(
        xlabel="mean predicted P(fake)", ylabel="fraction fake", title="Reliability diagram", xlim=(0, 1), ylim=(0, 1)
    )
    return _img(hist, "histogram") + _img(fig_to_data_uri(fig), "reliability")


def _model_section(results: list[dict[str, Any]]) -> str:
    """What was evaluated: each run's model name, version, weights and training data, from its model card."""
    parts = ["<h2>Model</h2>"]
    seen: set[str] = set()
    for r in results:
        if r["run"] in seen:
            continue
        seen.add(r["run"])
        card = r.get("model_card") or {}
        data = card.get("training_data") or {}
        init = card.get("init_weights") or {}
        rows = [
            {"field": "run", "value": r["run"]},
            {"field": "model", "value": card.get("name", "unknown")},
            {"field": "version", "value": card.get("version", "unknown")},
            {"field": "initial weights", "value": init.get("source", "unknown")},
            {"field": "training data", "value": _manifest_text(data.get("manifest", "not recorded"))},
            {"field": "self-blended fakes", "value": data.get("sbi", "off")},
        ]
        for what in ("sources", "splits"):
            for name, counts in (data.get(what) or {}).items():
                rows.append({"field": f"{what[:-1]} {name}", "value": ", ".join(f"{n} {k}" for k, n in counts.items())})
        if data.get("videos"):
            rows.append({"field": "videos", "value": ", ".join(f"{n} {s}" for s, n in data["videos"].items())})
        parts.append(table(rows))
    return "\n".join(parts)


def _with_intervals(row: dict[str, Any]) -> dict[str, Any]:
    """Fold `<rate>_ci95` columns into their rate as `value [lo, hi]` for display."""
    out = dict(row)
    for key in ("fpr", "detection_rate"):
        ci = out.pop(f"{key}_ci95", None)
        value = out.get(key)
        if ci is not None and isinstance(value, float) and value == value:
            out[key] = f"{value:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"
    return out


def _source_section(results: list[dict[str, Any]]) -> str:
    """Per-source table (issue 8) with warnings, first thing in the report."""
    parts = ["<h2>Per-source results at the stored threshold (frame level: one row per source, counted in crops)</h2>"]
    parts.append(
        "<p>FPR = fraction of a source's <b>real</b> crops flagged fake; detection rate = fraction of its fakes "
        "flagged. A warning appears when a source's FPR exceeds max(2&times;, +5 points) of the validation FPR.</p>"
        + _ONE_CLASS_NOTE
    )
    for r in results:
        cal = r["calibration"]
        parts.append(
            f"<h3>{html.escape(r['run'])} on {html.escape(r['manifest_name'])} "
            f"(threshold {cal['threshold']:.4f}, reference FPR {_fmt(cal['reference_fpr'])} "
            f"from {html.escape(cal['reference_fpr_from'])})</h3>"
        )
        for w in r.get("source_warnings", []):
            parts.append(f'<div class="warn">&#9888; {html.escape(w)}</div>')
        if not r.get("source_warnings"):
            parts.append('<div class="ok">No source exceeds the FPR warning limit.</div>')
        rows = [_with_reasons(_with_intervals(row)) for row in r["breakdown"].get("source", {}).get("frame", [])]
        parts.append(table(rows))
        hold = r.get("holdout")
        if hold:
            parts.append(f"<h4>Leave-one-source-out: held-out source {html.escape(hold['source'])!s}</h4>")
            hrows = []
            for part in ("heldout", "in_domain"):
                if hold.get(part):
                    for level in ("frame", "video"):
                        m = hold[part][level]
                        hrows.append({"part": part, "level": level, **{k: m.get(k) for k in _KEYS}})
            parts.append(table(hrows))
    return "\n".join(parts)


_KEYS = ("n", "n_real", "n_fake", "auc", "ap", "eer", "accuracy", "balanced_accuracy", "fpr_at_threshold",
         "tpr_at_threshold", "tpr_at_fpr_1pct", "tpr_at_fpr_0.1pct", "log_loss", "brier", "ece")  # fmt: skip


def render_report(metrics: dict[str, Any], scores: pd.DataFrame, explanations: list[dict[str, Any]]) -> str:
    """The full HTML document."""
    results = metrics["results"]
    p = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>deepdetect evaluation</title>"]
    p.append(f"<style>{_CSS}</style></head><body><h1>deepdetect evaluation report</h1>")
    p.append(f"<p>created {html.escape(str(metrics.get('created')))}; schema v{metrics['schema_version']}; "
             f"video score = {html.escape(json.dumps(metrics['aggregation']))}; 95% CIs from "
             f"{metrics['bootstrap']['n']} bootstrap resamples of videos.</p>")  # fmt: skip
    p.append(_model_section(results))
    p.append(_source_section(results))
    p.append("<h2>Summary (one column per run &times; test set)</h2>" + key_value_table(metrics["summary"]))
    p.append(
        "<h2>Curves</h2><p class='note'>Frame level scores every crop; video level scores each video once "
        "(its crops' scores aggregated). The dot on each ROC curve is the stored threshold's operating point.</p>"
        "<div class='grid'>" + _curves(scores, "frame", results) + _curves(scores, "video", results) + "</div>"
    )
    for r in results:
        p.append(f"<h2>{html.escape(r['run'])} on {html.escape(r['manifest_name'])}</h2>")
        rows = []
        for level in ("frame", "video"):
            m = r[level]
            ci = m.get("ci95", {})
            rows.append({"level": level, **{k: m.get(k) for k in _KEYS}, "auc 95% CI": ci.get("auc")})
        p.append(table(rows))
        frames = scores[
            (scores["run"] == r["run"]) & (scores["manifest"] == r["manifest_name"]) & (scores["level"] == "frame")
        ].dropna(subset=["prob"])
        if len(frames):
            p.append("<div class='grid'>" + _hist_and_reliability(frames, r["calibration"]["threshold"]) + "</div>")
        for col, tabs in r["breakdown"].items():
            if col == "source":
                continue
            rows = [_with_reasons(row) for row in tabs["frame"]]
            p.append(f"<h3>Per {html.escape(col)} (frame level, counted in crops)</h3>" + table(rows))
        if r.get("robustness"):
            rob = [{"perturbation": k, **v} for k, v in r["robustness"].items()]
            p.append("<h3>Robustness (same crops, perturbed; frame level)</h3>" + table(rob))
    p.append("<h2>Grad-CAM: most confident errors</h2>")
    if not explanations:
        p.append("<p><i>no false positives or false negatives at the stored threshold</i></p>")
    p.append("<div class='grid'>")
    for e in explanations:
        cap = f"{e['kind']}: {e['crop_path']} ({e['source']}), P(fake)={e['prob']:.3f}"
        layout = e.get("layout", "left: the face crop; right: its Grad-CAM heat map")
        p.append(
            f"<figure class='pair'><div class='labels'><span>face crop</span><span>Grad-CAM heat map</span></div>"
            f"{_img(e['image'], cap + ' (' + layout + ')')}<figcaption>{html.escape(cap)}<br>"
            f"<i>{html.escape(layout)}</i></figcaption></figure>"
        )
    p.append("</div><h2>Configuration (interpolations resolved)</h2>")
    p.append(f"<pre>{html.escape(json.dumps(metrics.get('config'), indent=2, default=str))}</pre></body></html>")
    return "\n".join(p)


def write_report(
    path: str | Path, metrics: dict[str, Any], scores: pd.DataFrame, explanations: list[dict[str, Any]]
) -> Path:
    """Render and write report.html atomically."""
    path = Path(path)
    atomic_write_text(path, render_report(metrics, scores, explanations))
    return path
