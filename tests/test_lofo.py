"""`deepdetect-lofo` end to end on generated faces: extract, train recipes, fuse experts, write families.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from omegaconf import open_dict

from deepdetect.studies.lofo import LofoError, run_lofo
from face_images import lfw_face, save
from test_families import write_families

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]

TINY = ["model=test", "model.input_size=64", "data.batch_size=4"]


def make_root(root: Path) -> Path:
    write_families(root / "families")
    for i in range(10):  # a face-swap source: real/X and fake/X pairs (grouped together by the folder layout)
        save(lfw_face(40 + i), root / "swaps" / "real" / f"p{i}.png")
        save(lfw_face(60 + i), root / "swaps" / "fake" / f"p{i}.png")
    for i in range(3):
        save(lfw_face(90 + i), root / "photos" / f"ph{i}.png")
    return root


def study_config(cfg_factory, root: Path, out: Path, recipes: list[str]):
    cfg = cfg_factory("lofo", [f"data_root={root}", f"output_dir={out}", f"recipes_to_run=[{','.join(recipes)}]"])
    with open_dict(cfg):
        cfg.extract = ["size=64", "num_workers=0", "torch_threads=1", "val_fraction=0.3", "test_fraction=0.2"]
        cfg.sources = {
            "swaps": {"path": "swaps", "role": "train", "extract": []},
            "photos": {"path": "photos", "role": "unseen", "extract": ["layout=single", "label=real"]},
            "families": {"path": "families", "role": "families", "extract": ["layout=pairs"]},
        }
        cfg.exclude_groups = []
        cfg.recipes = {
            "sbi": {"train": ["experiment=sbi_reference", *TINY], "sources": ["swaps"]},
            "faceswap": {"train": ["experiment=faceswap_reference", *TINY], "sources": ["swaps"]},
            "fusion": {"experts": ["sbi", "faceswap"]},
            "with_fams": {"train": ["experiment=faceswap_reference", *TINY], "sources": ["swaps"], "families": True},
        }
    return cfg


def test_lofo_writes_one_row_per_family_and_recipe(cfg_factory, tmp_path: Path) -> None:
    root = make_root(tmp_path / "data")
    out = tmp_path / "lofo"
    cfg = study_config(cfg_factory, root, out, ["sbi", "fusion", "with_fams"])
    with open_dict(cfg):
        cfg.results_json = str(tmp_path / "docs" / "families.json")
    rows = run_lofo(cfg)
    keys = {(r["recipe"], r["family"]) for r in rows}
    assert {("sbi", f) for f in ("lipsync", "reenact", "swap")} <= keys
    assert {("fusion", f) for f in ("lipsync", "reenact", "swap")} <= keys
    # a family with no reals of its own has no own-reals AUC, but is still ranked against every real
    reenact = next(r for r in rows if r["recipe"] == "sbi" and r["family"] == "reenact")
    assert reenact["video_auc"] is None and reenact["video_auc_all_reals"] is not None
    lipsync = next(r for r in rows if r["recipe"] == "sbi" and r["family"] == "lipsync")
    assert 0.0 <= lipsync["video_auc"] <= 1.0 and lipsync["n_unseen_real_videos"] == 3
    assert 0.0 <= lipsync["fpr_unseen_real"] <= 1.0 and lipsync["seconds"] > 0
    assert "deepdetect-lofo" in lipsync["command"] and "lipsync" in lipsync["command"]
    # trained with the families: one run per held-out family, never on the held-out family's rows
    for fam in ("lipsync", "reenact", "swap"):
        meta = json.loads((out / "runs" / f"with_fams_without_{fam}" / "model.json").read_text())
        assert fam not in meta["training_data"]["sources"]
    # the swap fake shares its group with the reenact fake: scored without it when reenact was trained on
    swap_fams = next(r for r in rows if r["recipe"] == "with_fams" and r["family"] == "swap")
    assert swap_fams["n_fake_videos"] == 0 or swap_fams["video_auc"] is None
    stacker = json.loads((out / "scores" / "fusion" / "stacker.json").read_text())
    assert set(stacker["weights"]) == {"sbi", "faceswap"} and stacker["val_videos"]["real"] > 0
    on_disk = json.loads(Path(cfg.results_json).read_text())
    assert len(on_disk) == len(rows)
    # a second run reuses the trained runs and rewrites the same rows
    again = run_lofo(study_config(cfg_factory, root, out, ["sbi"]))
    assert [r["video_auc"] for r in again] == [r["video_auc"] for r in rows if r["recipe"] == "sbi"]


def test_lofo_refuses_unknown_recipes_and_families(cfg_factory, tmp_path: Path) -> None:
    root = make_root(tmp_path / "data")
    with pytest.raises(LofoError, match="unknown recipes"):
        run_lofo(study_config(cfg_factory, root, tmp_path / "o", ["nope"]))
    cfg = study_config(cfg_factory, root, tmp_path / "o", ["sbi"])
    with open_dict(cfg):
        cfg.families = ["diffusion"]
    with pytest.raises(LofoError, match="unknown families"):
        run_lofo(cfg)
