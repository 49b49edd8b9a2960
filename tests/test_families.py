"""Manipulation families: the pairs.csv layout, dense landmarks at extraction, per-family metrics and the table."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from deepdetect.data.layouts import LayoutError, load_sources
from deepdetect.data.manifest import read_manifest
from deepdetect.studies.families import RowMeta, family_row
from deepdetect.studies.lofo import merge_rows, render_markdown, write_results_section
from face_images import astronaut, lfw_face, save

pytestmark = pytest.mark.usefixtures("one_torch_thread")

PAIRS_HEADER = ["family", "source_repo", "commit", "path_in_repo", "file", "label", "group", "pair_of"]


def write_families(root: Path) -> Path:
    """Two families with a shared group (as ffpp_000_003 spans swap and reenact in the real folder)."""
    rows = [
        ("lipsync", "org/Wav2Lip", "lipsync/real/a.png", "real", "g_a", lfw_face(0)),
        ("lipsync", "org/Wav2Lip", "lipsync/fake/a_fake.png", "fake", "g_a", lfw_face(1)),
        ("swap", "org/roop", "swap/real/b.png", "real", "g_b", lfw_face(2)),
        ("swap", "org/roop", "swap/fake/b_fake.png", "fake", "g_shared", lfw_face(3)),
        ("reenact", "org/EDTalk", "reenact/fake/c_fake.png", "fake", "g_shared", lfw_face(4)),
    ]
    root.mkdir(parents=True, exist_ok=True)
    with (root / "pairs.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(PAIRS_HEADER)
        for fam, repo, rel, label, group, img in rows:
            save(img, root / rel)
            w.writerow([fam, repo, "c0ffee", "x", rel, label, group, ""])
    return root


def test_pairs_layout_carries_family_source_and_group(tmp_path: Path) -> None:
    root = write_families(tmp_path / "families")
    sources = {s.rel: s for s in load_sources("pairs", root, "families")}
    assert len(sources) == 5
    s = sources["swap/fake/b_fake.png"]
    assert (s.label, s.source, s.method, s.group) == ("fake", "swap", "roop", "families:g_shared")
    assert sources["reenact/fake/c_fake.png"].group == s.group, "a group spans families"
    (root / "swap/real/b.png").unlink()
    assert len(load_sources("pairs", root, "families")) == 4, "a missing listed file is skipped"


@pytest.mark.parametrize(
    ("cell", "value", "error"),
    [("file", "../outside.png", "not inside"), ("label", "maybe", "label must be"), ("group", None, "missing columns")],
)
def test_pairs_layout_refuses_bad_rows(tmp_path: Path, cell: str, value: str | None, error: str) -> None:
    root = write_families(tmp_path / "families")
    frame = pd.read_csv(root / "pairs.csv", dtype=str)
    if value is None:
        frame = frame.drop(columns=[cell])
    else:
        frame.loc[0, cell] = value
    frame.to_csv(root / "pairs.csv", index=False)
    with pytest.raises(LayoutError, match=error):
        load_sources("pairs", root, "families")


def test_extraction_stores_dense_landmarks_that_sit_on_the_face(cfg_factory, tmp_path: Path) -> None:
    from deepdetect.data.extract import extract
    from deepdetect.faces.landmarks import available

    if not available():
        pytest.skip("dense landmarks need the `landmarks` extra (dlib-bin, face-recognition-models)")
    save(astronaut(), tmp_path / "in" / "astronaut.png")
    out = tmp_path / "out"
    extract(
        cfg_factory(
            "extract",
            [f"input={tmp_path / 'in'}", f"output_dir={out}", "layout=single", "label=real", "dense_landmarks=true"],
        )
    )
    row = read_manifest(out / "manifest.csv").iloc[0]
    pts = np.array([float(v) for v in row["landmarks68"].split()]).reshape(68, 2)
    five = np.array([float(v) for v in row["landmarks"].split()]).reshape(5, 2)
    size = 64  # debug=fast crops
    assert np.all((pts > -2) & (pts < size + 2))
    # dlib's eye centres (36-41, 42-47) and nose tip (33) land on MTCNN's eye and nose points
    for dense_pt, mtcnn_pt in ((pts[36:42].mean(0), five[0]), (pts[42:48].mean(0), five[1]), (pts[33], five[2])):
        assert np.linalg.norm(dense_pt - mtcnn_pt) < 0.08 * size
    assert pts[8, 1] > pts[57, 1] > pts[33, 1] > pts[27, 1], "chin below mouth below nose tip below nose bridge"
    info = json.loads((out / "extract.json").read_text())
    assert info["settings"]["dense_landmarks"] in (True, "true")
    off = tmp_path / "off"
    extract(
        cfg_factory(
            "extract",
            [f"input={tmp_path / 'in'}", f"output_dir={off}", "layout=single", "label=real", "dense_landmarks=false"],
        )
    )
    assert read_manifest(off / "manifest.csv")["landmarks68"].iloc[0] == ""


def _scored(family: str, fake_scores: list[float], real_scores: list[float]) -> pd.DataFrame:
    rows = []
    for label, scores in (("fake", fake_scores), ("real", real_scores)):
        for i, s in enumerate(scores):
            for f in range(2):  # two frames per video
                rows.append(
                    {
                        "label": label,
                        "source": family,
                        "group": f"g{i}",
                        "video_id": f"{label}{i}",
                        "prob": s + 0.01 * f,
                    }
                )
    return pd.DataFrame(rows)


def test_family_row_ranks_fakes_against_reals_with_intervals_over_groups() -> None:
    fam = _scored("lipsync", [0.9, 0.8, 0.7, 0.2], [0.1, 0.3, 0.75])
    unseen = _scored("photos", [], [0.1, 0.2, 0.6, 0.95])
    row = family_row("lipsync", fam, unseen, 0.5, RowMeta("sbi", 12.3, "deepdetect-lofo", boot_n=200))
    assert row.video_auc == pytest.approx(9 / 12)  # 9 of 12 fake/real pairs ordered right
    assert row.n_fake_videos == 4 and row.n_real_videos == 3 and row.n_unseen_real_videos == 4
    assert row.tpr_at_threshold == pytest.approx(3 / 4) and row.fpr_unseen_real == pytest.approx(2 / 4)
    lo, hi = row.video_auc_ci95
    assert lo is not None and hi is not None and lo <= row.video_auc <= hi
    assert row.frame_auc is not None and 0.0 <= row.frame_auc <= 1.0
    d = row.to_dict()
    assert set(d) >= {"family", "recipe", "video_auc", "video_auc_ci95", "frame_auc", "frame_auc_ci95",
                      "fpr_unseen_real", "tpr_at_threshold", "seconds", "command"}  # fmt: skip
    json.dumps(d)


def test_table_rows_merge_by_family_and_recipe_and_render(tmp_path: Path) -> None:
    fam = _scored("swap", [0.9, 0.8], [0.1, 0.2])
    unseen = _scored("photos", [], [0.1])
    a = family_row("swap", fam, unseen, 0.5, RowMeta("sbi", 1.0, "cmd")).to_dict()
    b = family_row("swap", fam, unseen, 0.5, RowMeta("faceswap", 1.0, "cmd")).to_dict()
    merged = merge_rows([a], [dict(b), {**a, "seconds": 2.0}])
    assert [(r["recipe"], r["seconds"]) for r in merged] == [("faceswap", 1.0), ("sbi", 2.0)]
    md = render_markdown(merged)
    assert "| `sbi` | swap | 2 / 2 | 1.000" in md and "1 of 1" in md
    results = tmp_path / "RESULTS.md"
    results.write_text("# Results\n\nintro\n")
    write_results_section(results, merged)
    write_results_section(results, merged[:1])
    text = results.read_text()
    assert text.count("<!-- families table: begin -->") == 1 and "`sbi`" not in text.split("begin -->")[1]


def test_reals_from_adds_only_the_reals_of_other_sources_with_their_splits(tmp_path: Path) -> None:
    from omegaconf import OmegaConf

    from deepdetect.studies.lofo import StudyData, recipe_manifests, validation_sources
    from tiny_data import make_tiny_manifest

    gan = make_tiny_manifest(tmp_path / "gan", n_videos=4)
    swaps = make_tiny_manifest(tmp_path / "swaps", n_videos=8, seed=1)
    data = StudyData({"gan": gan, "swaps": swaps}, {"gan": "train", "swaps": "train"})
    cfg = OmegaConf.create(
        {"recipes": {"expert": {"sources": ["gan"], "reals_from": ["swaps"]}, "plain": {"sources": ["gan"]}}}
    )
    assert recipe_manifests(cfg, "plain", data, tmp_path / "study") == [gan]
    first, extra = recipe_manifests(cfg, "expert", data, tmp_path / "study")
    assert first == gan
    added, original = read_manifest(extra), read_manifest(swaps)
    assert set(added["label"]) == {"real"} and len(added) == (original["label"] == "real").sum()
    assert sorted(added["split"]) == sorted(original.loc[original["label"] == "real", "split"])
    assert all(Path(p).is_file() for p in added["abs_crop_path"])
    # the stacker validates on the whole of every source an expert trains on, each once
    assert validation_sources(cfg, ["expert", "plain"], data, tmp_path / "study") == sorted([gan, swaps])
    # calibration_from: the reals alone of a source no expert trains on join the stacker's validation, once
    (*trained, calib) = validation_sources(cfg, ["plain"], data, tmp_path / "study", ["swaps", "gan"])
    assert trained == [gan] and set(read_manifest(calib)["label"]) == {"real"}
    assert len(read_manifest(calib)) == (original["label"] == "real").sum()
