"""deepdetect-evaluate-records: predict's records measured against labels (CSV and folders), per family and overall."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.metrics import roc_auc_score

from deepdetect.cli.evaluate_records import main
from deepdetect.cli.predict import main as predict_main
from deepdetect.evaluation.labelled import FolderLabel, LabelError, label_records, labels_from_csv, measure


def _record(path: Path, score: float | None, status: str = "ok", threshold: float = 0.5, **extra: object) -> dict:
    return {"path": str(path), "abs_path": str(path), "status": status, "score": score, "threshold": threshold, **extra}


def _write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.fixture
def collection(tmp_path: Path) -> dict[str, object]:
    """Two families in a pairs-style CSV (paths relative to its folder) and a folder of unseen reals, with records."""
    root = tmp_path / "families"
    rows, records = [], []
    rng = np.random.default_rng(0)
    for fam, shift in (("lipsync", 0.1), ("swap", 0.4)):
        for g in range(4):
            real = f"{fam}/real/{g}.mp4"
            rows.append({"family": fam, "file": real, "label": "real", "group": f"{fam}{g}"})
            records.append(_record(root / real, float(rng.uniform(0, 0.6))))
            for k in range(2):
                fake = f"{fam}/fake/{g}_{k}.mp4"
                rows.append({"family": fam, "file": fake, "label": "fake", "group": f"{fam}{g}"})
                records.append(_record(root / fake, float(rng.uniform(shift, 0.6 + shift))))
    root.mkdir()
    pd.DataFrame(rows).to_csv(root / "pairs.csv", index=False)
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(5):
        records.append(_record(photos / f"p{i}.jpg", float(rng.uniform(0, 0.7))))
    records[1] = {**records[1], "status": "no_face", "score": None}  # a fake predict could not score
    records.append(_record(tmp_path / "elsewhere.jpg", 0.9))  # no label: counted, left out
    return {"csv": root / "pairs.csv", "photos": photos, "records": records}


def test_figures_match_an_independent_auc_and_count_what_was_not_scored(collection: dict) -> None:
    labels = labels_from_csv(collection["csv"])
    frame, unjoined = label_records(collection["records"], labels, [FolderLabel(str(collection["photos"]), "real")])
    assert unjoined == {
        "unlabelled_records": 1,
        "repeated_records": 0,
        "excluded_records": 0,
        "labelled_without_record": 0,
    }
    result = measure(frame, boot_n=200)
    rows = {r["family"]: r for r in result["families"]}
    assert set(rows) == {"lipsync", "swap", "photos"}
    scores = {r["abs_path"]: r for r in collection["records"]}
    for fam in ("lipsync", "swap"):
        part = frame[(frame["family"] == fam) & frame["score"].notna()]
        expected = roc_auc_score(part["label"] == "fake", part["score"])
        assert rows[fam]["auc"] == pytest.approx(expected)
        lo, hi = rows[fam]["auc_ci95"]
        assert lo is not None and lo <= hi
        every_real = frame[(frame["label"] == "real") | (frame["family"] == fam)].dropna(subset=["score"])
        assert rows[fam]["auc_vs_all_reals"] == pytest.approx(
            roc_auc_score(every_real["label"] == "fake", every_real["score"])
        )
        fakes = frame[(frame["family"] == fam) & (frame["label"] == "fake")]
        flagged = [(scores[p]["score"] or -1) >= 0.5 and scores[p]["status"] == "ok" for p in fakes["path"]]
        assert rows[fam]["detected"] == pytest.approx(np.mean(flagged))
    assert rows["lipsync"]["n_not_scored"] == 1 and rows["lipsync"]["n_fake"] == 8
    assert rows["photos"]["auc"] is None and rows["photos"]["n_real"] == 5
    assert result["statuses"]["fake/no_face"] == 1
    assert result["overall"]["n_fake"] == 16 and result["overall"]["n_real"] == 13


def test_a_set_of_stills_and_videos_gets_a_row_per_kind(collection: dict) -> None:
    """Scores that rank within each kind but put every still above every video: the kind rows say so."""
    records = []
    for rec in collection["records"]:
        kind = "image" if rec["path"].endswith(".jpg") else "video"
        score = rec["score"] if rec["score"] is None or kind == "video" else 0.5 + rec["score"] / 2
        records.append({**rec, "kind": kind, "score": score})
    labels = labels_from_csv(collection["csv"])
    frame, _ = label_records(records, labels, [FolderLabel(str(collection["photos"]), "real")])
    media = {row["family"]: row for row in measure(frame, boot_n=0)["media"]}
    assert set(media) == {"all images", "all videos"}
    assert media["all images"]["n_real"] == 5 and media["all images"]["auc"] is None  # the photos: reals only
    videos = frame[(frame["kind"] == "video") & frame["score"].notna()]
    assert media["all videos"]["auc"] == pytest.approx(roc_auc_score(videos["label"] == "fake", videos["score"]))
    assert media["all videos"]["n_fake"] == 16 and media["all videos"]["n_not_scored"] == 1
    assert measure(frame.assign(kind="video"), boot_n=0)["media"] == []  # one kind: the overall row says it all


def test_a_csv_label_wins_over_a_folder_and_repeats_are_counted(tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    (tmp_path / "labels.csv").write_text("path,label\nmixed/a.jpg,fake\n")
    recs = [_record(folder / "a.jpg", 0.9), _record(folder / "b.jpg", 0.1), _record(folder / "b.jpg", 0.2)]
    frame, unjoined = label_records(recs, labels_from_csv(tmp_path / "labels.csv"), [FolderLabel(str(folder), "real")])
    assert dict(zip(frame["path"].map(lambda p: Path(p).name), frame["label"], strict=True)) == {
        "a.jpg": "fake",
        "b.jpg": "real",
    }
    assert unjoined["repeated_records"] == 1
    assert frame.loc[frame["label"] == "real", "score"].item() == pytest.approx(0.1)  # the first record is kept


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("file,kind\na.jpg,real\n", "needs a label column"),
        ("file,label\na.jpg,maybe\n", "line 2: label must be real or fake"),
        ("file,label\n,real\n", "line 2: empty file"),
    ],
)
def test_bad_label_files_are_refused_with_the_line(tmp_path: Path, content: str, needle: str) -> None:
    (tmp_path / "labels.csv").write_text(content)
    with pytest.raises(LabelError, match=needle):
        labels_from_csv(tmp_path / "labels.csv")


def test_cli_usage_errors_are_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    records = _write_jsonl(tmp_path / "r.jsonl", [_record(tmp_path / "a.jpg", 0.3)])
    (tmp_path / "bad.csv").write_text("file,label\na.jpg,maybe\n")
    cases = [
        [str(tmp_path / "missing.jsonl"), "--real", str(tmp_path)],
        [str(records)],
        [str(records), "--real", str(tmp_path / "nope")],
        [str(records), "--labels", str(tmp_path / "bad.csv")],
        [str(records), "--real", str(tmp_path), "-o", str(records)],
    ]
    for argv in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("deepdetect-evaluate-records: error:"), err


def test_predict_then_evaluate_records_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A tiny exported model scores real files through predict; the command reads its records and labels them."""
    from skimage.data import astronaut

    from deepdetect.export.pipeline import export
    from test_export import export_cfg, make_tiny_checkpoint

    ckpt = make_tiny_checkpoint(tmp_path / "run")
    export(export_cfg(ckpt, tmp_path / "ex"))
    img = astronaut()
    real, fake = tmp_path / "media" / "real", tmp_path / "media" / "fake"
    real.mkdir(parents=True)
    fake.mkdir()
    for i, (y, x) in enumerate([(0, 100), (10, 120), (20, 90), (5, 110)]):
        face = Image.fromarray(img[y : y + 260, x : x + 260]).resize((100, 100))
        face.save((real if i % 2 else fake) / f"face{i}.png")
    (fake / "broken.png").write_bytes(b"not an image")
    records = tmp_path / "pred.jsonl"
    argv = [str(real), str(fake), "--model", str(tmp_path / "ex" / "model.onnx"), "--output", str(records), "--quiet"]
    assert predict_main(argv) == 0
    out_json = tmp_path / "figures.json"
    plot = tmp_path / "scores.png"
    argv = [str(records), "--real", str(real), "--fake", str(fake), "-o", str(out_json), "--plot", str(plot)]
    assert main([*argv, "--bootstrap", "50"]) == 0
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = capsys.readouterr().out
    assert "| fake | 3 / 0 | 1 |" in table and "| real | 0 / 2 | 0 |" in table
    # a folder label's group is the file itself: leaving one out drops just that file
    left_out = str((real / "face1.png").resolve())
    assert main([str(records), "--real", str(real), "--fake", str(fake), "--exclude-group", left_out]) == 0
    assert "| real | 0 / 1 | 0 |" in capsys.readouterr().out
    result = json.loads(out_json.read_text())
    recs = [json.loads(line) for line in records.read_text().splitlines()]
    ok = [r for r in recs if r["status"] == "ok"]
    assert len(ok) == 4
    y = ["/fake/" in r["abs_path"] for r in ok]
    assert result["overall"]["auc"] == pytest.approx(roc_auc_score(y, [r["score"] for r in ok]))
    (broken,) = [r for r in recs if r["status"] != "ok"]
    assert result["statuses"][f"fake/{broken['status']}"] == 1 and result["overall"]["n_not_scored"] == 1
