"""bench/siblings.py: the one loader of benchmark modules by file name, used by run.py and every benchmark."""

from __future__ import annotations

import re
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture()
def siblings(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """bench/siblings.py imported the way the benchmarks import it (bench/ first on the path)."""
    monkeypatch.syspath_prepend(str(BENCH))
    import siblings as module

    return module


def test_load_runs_the_file_afresh(siblings: ModuleType, tmp_path: Path) -> None:
    (tmp_path / "bench_tiny.py").write_text("CALLS = []\n\ndef run(out_dir, quick):\n    return {'quick': quick}\n")
    first = siblings.load("bench_tiny", tmp_path)
    first.CALLS.append(1)
    again = siblings.load("bench_tiny", tmp_path)
    assert again.run(tmp_path, True) == {"quick": True}
    assert again.CALLS == [] and first is not again


def test_missing_module_is_a_clear_error(siblings: ModuleType, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="bench_nothing"):
        siblings.load("bench_nothing", tmp_path)


def test_every_benchmark_loads_siblings_through_the_helper() -> None:
    """No benchmark carries its own copy of the loader, and every module it loads exists."""
    for path in BENCH.glob("*.py"):
        text = path.read_text()
        if path.name != "siblings.py":
            assert "spec_from_file_location" not in text, f"{path.name} loads modules by itself"
        for name in re.findall(r"\bload\(\"(\w+)\"\)", text):
            assert (BENCH / f"{name}.py").is_file(), f"{path.name} loads a missing module {name}"
