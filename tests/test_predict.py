"""deepdetect-predict: images, a video, folders, path lists and bad files, both backends, CLI exit codes."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from deepdetect.cli.predict import main
from deepdetect.export.pipeline import export
from deepdetect.faces.detect import FaceDetector
from deepdetect.inference.predict import predict_files
from deepdetect.inference.predictor import ModelLoadError, OnnxBackend, Predictor, TorchBackend
from media_corpus import make_bad_corpus, make_video
from test_export import export_cfg, make_tiny_checkpoint


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny checkpoint, its ONNX export, an astronaut JPEG and a short astronaut mp4."""
    from skimage.data import astronaut

    root = tmp_path_factory.mktemp("predict")
    ckpt = make_tiny_checkpoint(root / "run")
    export(export_cfg(ckpt, root / "ex"))
    media = root / "media"
    (media / "sub").mkdir(parents=True)
    img = astronaut()
    Image.fromarray(img).save(media / "astronaut.jpg")
    make_video(media / "sub" / "clip.mp4", [img[:256, 64:320]] * 6, fps=5)
    return {"run": root / "run", "onnx": root / "ex" / "model.onnx", "media": media}


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector(device="cpu")


def test_image_and_video_records(models: dict[str, Path], detector: FaceDetector) -> None:
    predictor = Predictor.from_path(models["onnx"])
    assert isinstance(predictor, OnnxBackend)
    recs = list(predict_files([models["media"]], predictor, detector, frames=4, progress=False))
    by_kind = {r["kind"]: r for r in recs}
    assert set(by_kind) == {"image", "video"}
    for rec in recs:
        assert rec["status"] == "ok" and 0.0 <= rec["score"] <= 1.0 and rec["n_faces"] >= 1
        assert rec["label"] == ("fake" if rec["score"] >= 0.4 else "real") and rec["threshold"] == 0.4
        assert len(rec["sha256"]) == 64 and rec["model_name"] == "test_efficientnet"
        assert rec["error"] is None and rec["seconds"] > 0
    image = by_kind["image"]
    assert image["score"] == pytest.approx(max(f["score"] for f in image["faces"]), abs=1e-6)
    video = by_kind["video"]
    assert video["n_frames"] == 4
    per_frame: dict[int, float] = {}
    for face in video["faces"]:
        per_frame[face["frame_index"]] = max(per_frame.get(face["frame_index"], 0.0), face["score"])
    assert video["score"] == pytest.approx(np.mean(list(per_frame.values())), abs=1e-5)


def test_onnx_and_checkpoint_backends_agree(models: dict[str, Path], detector: FaceDetector) -> None:
    onnx_pred, torch_pred = Predictor.from_path(models["onnx"]), Predictor.from_path(models["run"])
    assert isinstance(torch_pred, TorchBackend)
    assert onnx_pred.contract.version == torch_pred.contract.version
    path = [models["media"] / "astronaut.jpg"]
    a = next(predict_files(path, onnx_pred, detector, progress=False))
    b = next(predict_files(path, torch_pred, detector, progress=False))
    assert a["status"] == b["status"] == "ok"
    assert abs(a["score"] - b["score"]) <= 1e-4


def test_bad_files_each_get_their_status(tmp_path: Path, models: dict[str, Path], detector: FaceDetector) -> None:
    corpus = make_bad_corpus(tmp_path / "bad")
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(str(p) for p, _ in corpus.values()) + "\n", encoding="utf-8")
    predictor = Predictor.from_path(models["onnx"])
    recs = {r["path"]: r for r in predict_files([listing], predictor, detector, frames=4, progress=False)}
    for name, (path, expected) in corpus.items():
        rec = recs[str(path)]
        want = "no_face" if expected == "ok" else expected  # decodable corpus files hold no face
        assert rec["status"] == want, (name, rec)
        assert rec["score"] is None and rec["label"] is None and rec["error"]


def test_cli_writes_jsonl_and_csv_and_exit_codes(tmp_path: Path, models: dict[str, Path]) -> None:
    out = tmp_path / "r.jsonl"
    code = main([str(models["media"]), str(tmp_path / "missing.jpg"), "--model", str(models["onnx"]),
                 "--output", str(out), "--frames", "3", "--quiet"])  # fmt: skip
    assert code == 0
    recs = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["status"] for r in recs) == ["not_found", "ok", "ok"]
    out_csv = tmp_path / "r.csv"
    assert main([str(models["media"] / "astronaut.jpg"), "--model", str(models["run"]), "--output", str(out_csv),
                 "--quiet", "--explain", str(tmp_path / "cam"), "--threshold", "0"]) == 0  # fmt: skip
    rows = list(csv.DictReader(out_csv.open()))
    assert rows[0]["status"] == "ok" and json.loads(rows[0]["faces"])
    assert Path(rows[0]["explanation"]).is_file()

    bad = tmp_path / "bad.txt.mp4"
    bad.write_text("not a video")
    assert main([str(bad), "--model", str(models["onnx"]), "--output", str(tmp_path / "x.jsonl"), "--quiet"]) == 1
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main([str(empty), "--model", str(models["onnx"]), "--output", str(tmp_path / "y.jsonl")]) == 2
    assert main([str(bad), "--model", str(tmp_path / "nope.onnx"), "--output", str(tmp_path / "z.jsonl")]) == 2
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"junk")
    assert main([str(bad), "--model", str(junk), "--output", str(tmp_path / "z.jsonl")]) == 2
    assert main([str(bad), "--model", str(models["onnx"]), "--explain", str(tmp_path / "c")]) == 2
    # An output that cannot be written is a usage error found before any work, not a traceback.
    assert main([str(bad), "--model", str(models["onnx"]), "--output", str(tmp_path)]) == 2
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    assert main([str(bad), "--model", str(models["onnx"]), "--output", str(blocker / "out.jsonl")]) == 2
    with pytest.raises(SystemExit) as exc:
        main(["--model", str(models["onnx"])])
    assert exc.value.code == 2


def test_model_load_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="not found"):
        Predictor.from_path(tmp_path / "absent.onnx")
    (tmp_path / "run").mkdir()
    with pytest.raises(ModelLoadError, match="cannot load checkpoint"):
        Predictor.from_path(tmp_path / "run")


def test_faces_smaller_than_training_saw_are_never_scored(models: dict[str, Path], detector: FaceDetector) -> None:
    """The contract's min_face (from extraction) filters faces in predict; min_score and frames come from it too."""
    predictor = Predictor.from_path(models["onnx"])
    image = models["media"] / "astronaut.jpg"
    base = next(iter(predict_files([image], predictor, detector, progress=False)))
    assert base["status"] == "ok"
    side = max(f["box"][2] - f["box"][0] for f in base["faces"])
    predictor.contract = predictor.contract.with_face_crop(min_face=side + 50, frames_per_video=3)
    rec = next(iter(predict_files([image], predictor, detector, progress=False)))
    assert rec["status"] == "no_face" and rec["n_faces"] == 0 and "px" in rec["error"]
    clip = next(iter(predict_files([models["media"] / "sub" / "clip.mp4"], predictor, detector, progress=False)))
    assert clip["n_frames"] == 3  # the contract's frames_per_video when the caller gives none
