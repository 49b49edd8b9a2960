"""scripts/compare_outputs.py: the refactor check tells real changes from float noise and run-specific values."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType


def _script() -> ModuleType:
    path = Path(__file__).resolve().parents[1] / "scripts" / "compare_outputs.py"
    spec = importlib.util.spec_from_file_location("compare_outputs", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_diff_tolerates_float_noise_only() -> None:
    cmp = _script()
    assert cmp.diff({"auc": 0.75, "n": 3}, {"auc": 0.75 + 1e-12, "n": 3}) == []
    assert cmp.diff({"auc": 0.75}, {"auc": 0.7501}) == [".auc: 0.75 vs 0.7501"]
    assert cmp.diff({"n": 3}, {"n": 4}) == [".n: 3 vs 4"]
    assert cmp.diff({"a": [1, 2]}, {"a": [1]}) == [".a: 2 items vs 1"]
    assert cmp.diff({"a": 1}, {"b": 1}) == [".a: only in A", ".b: only in B"]
    assert cmp.diff({"ok": True}, {"ok": 1}) != []


def test_compare_ignores_run_folder_and_timestamps(tmp_path: Path) -> None:
    cmp = _script()
    a, b = tmp_path / "a", tmp_path / "b"
    for root, created, score in ((a, "2020", 0.5), (b, "2021", 0.5)):
        (root / "evaluate").mkdir(parents=True)
        metrics = {"created": created, "checkpoint": f"{root.resolve()}/train", "auc": score}
        (root / "evaluate" / "metrics.json").write_text(json.dumps(metrics))
        (root / "predictions.jsonl").write_text(json.dumps({"score": score, "seconds": float(len(created))}) + "\n")
    problems = cmp.compare(a, b)
    assert not [p for p in problems if p.startswith(("evaluate/metrics.json", "predictions.jsonl"))]
    assert any(p.startswith("extract/manifest.csv: missing") for p in problems)
    (b / "predictions.jsonl").write_text(json.dumps({"score": 0.9, "seconds": 1.0}) + "\n")
    assert "predictions.jsonl[0].score: 0.5 vs 0.9" in cmp.compare(a, b)
