"""Leave-one-source-out in one command: train without a source, then evaluate on it; several manifests combined."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from deepdetect.data.manifest import ManifestError, drop_source, read_manifests
from deepdetect.training.train import train
from tiny_data import make_tiny_manifest


def test_read_manifests_combines_and_resolves_each_folder(tmp_path: Path) -> None:
    a = make_tiny_manifest(tmp_path / "a", n_videos=8)
    b = make_tiny_manifest(tmp_path / "b", n_videos=8, seed=1)
    both = read_manifests([a, b])
    assert len(both) == len(pd.read_csv(a)) + len(pd.read_csv(b))
    assert all(Path(p).is_file() for p in both["abs_crop_path"])
    roots = {"a" if str(p).startswith(str(tmp_path / "a")) else "b" for p in both["abs_crop_path"]}
    assert roots == {"a", "b"}, "each manifest's crop paths resolve against its own folder"


def test_drop_source_refuses_unknown_source(tmp_path: Path) -> None:
    frame = read_manifests(make_tiny_manifest(tmp_path, n_videos=8))
    assert set(drop_source(frame, "src0")["source"]) == {"src1"}
    with pytest.raises(ManifestError, match="not in the manifest"):
        drop_source(frame, "nope")


def test_loso_trains_without_the_source_and_evaluates_on_it(cfg_factory, tmp_path: Path) -> None:
    manifest = make_tiny_manifest(tmp_path / "a", n_videos=16)
    other = make_tiny_manifest(tmp_path / "b", n_videos=8, seed=1)
    frame = pd.read_csv(other)
    frame["source"] = "unseen"
    frame.to_csv(other, index=False)
    out = tmp_path / "run"
    cfg = cfg_factory(
        "train",
        [
            "model=test",
            "experiment=loso",
            f"data.manifest=[{manifest},{other}]",
            "data.holdout_source=unseen",
            f"output_dir={out}",
            "trainer.max_epochs=1",
            "holdout_eval_overrides=['bootstrap.n=10','robustness=[]','report.gradcam=0']",
        ],
    )
    metrics = train(cfg)
    meta = json.loads((out / "model.json").read_text())
    assert set(meta["training_data"]["sources"]) == {"src0", "src1"}, "the held-out source must not be trained on"
    ev = json.loads((out / "holdout_eval" / "metrics.json").read_text())
    holdout = ev["results"][0]["holdout"]
    assert holdout["source"] == "unseen"
    assert holdout["heldout"]["n_frames"] == len(frame), "every row of the held-out source is evaluated, any split"
    in_domain_test = (pd.read_csv(manifest)["split"] == "test").sum()
    assert holdout["in_domain"]["n_frames"] == in_domain_test, "in-domain = the test split of the other sources"
    assert metrics["holdout_eval"] == str(out / "holdout_eval")


LOSO_EXPERIMENTS = sorted(p.stem for p in (Path(__file__).parents[1] / "configs" / "experiment").glob("loso*.yaml"))


@pytest.mark.parametrize("experiment", LOSO_EXPERIMENTS)
def test_debug_fast_shrinks_the_holdout_evaluation(cfg_factory, tmp_path: Path, experiment: str) -> None:
    from deepdetect.training.settings import TrainSettings
    from deepdetect.training.train import holdout_eval_config

    overrides = [f"experiment={experiment}", f"data.manifest=[{tmp_path / 'a.csv'}]", "data.holdout_source=x"]
    fast = holdout_eval_config(TrainSettings.from_config(cfg_factory("train", overrides)), tmp_path / "h")
    assert fast.bootstrap.n <= 50 and fast.report.gradcam == 0 and list(fast.robustness) == []
    assert fast.device == "cpu" and fast.holdout_source == "x"
    full = holdout_eval_config(TrainSettings.from_config(cfg_factory("train", overrides, fast=False)), tmp_path / "h")
    assert full.bootstrap.n > 50, "without debug=fast the experiment's own bootstrap applies"
