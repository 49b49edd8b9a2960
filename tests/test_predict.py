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
from deepdetect.inference.explain import occlusion_map
from deepdetect.inference.predict import predict_files, run_header_path, run_predict
from deepdetect.inference.predictor import ModelLoadError, OnnxBackend, Predictor, TorchBackend
from deepdetect.inference.settings import PredictSettings
from media_corpus import make_bad_corpus, make_video
from test_export import export_cfg, make_tiny_checkpoint

ROC = [[0.9, 0.0, 0.2], [0.6, 0.004, 0.5], [0.45, 0.01, 0.7], [0.3, 0.05, 0.9], [0.1, 0.5, 1.0]]


QUIET = PredictSettings(progress=False)
FAST4 = PredictSettings(frames=4, progress=False)


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
    # the same model with a stored validation curve, as training now writes it, exported to ONNX
    sidecar = root / "run" / "model.json"
    meta = json.loads(sidecar.read_text())
    roc_run = root / "roc_run"
    roc_run.mkdir()
    (roc_run / "model.safetensors").write_bytes((root / "run" / "model.safetensors").read_bytes())
    cal = {"threshold": 0.45, "threshold_rule": "fpr", "target_fpr": 0.01, "val_fpr": 0.01, "val_tpr": 0.7}
    meta["calibration"].update(cal, roc=ROC)
    (roc_run / "model.json").write_text(json.dumps(meta))
    export(export_cfg(roc_run / "model.safetensors", root / "roc_ex"))
    return {
        "run": root / "run",
        "onnx": root / "ex" / "model.onnx",
        "roc_onnx": root / "roc_ex" / "model.onnx",
        "media": media,
    }


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector(device="cpu")


def test_image_and_video_records(models: dict[str, Path], detector: FaceDetector) -> None:
    predictor = Predictor.from_path(models["onnx"])
    assert isinstance(predictor, OnnxBackend)
    recs = list(predict_files([models["media"]], predictor, detector, FAST4))
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
    a = next(predict_files(path, onnx_pred, detector, QUIET))
    b = next(predict_files(path, torch_pred, detector, QUIET))
    assert a["status"] == b["status"] == "ok"
    assert abs(a["score"] - b["score"]) <= 1e-4


def test_bad_files_each_get_their_status(tmp_path: Path, models: dict[str, Path], detector: FaceDetector) -> None:
    corpus = make_bad_corpus(tmp_path / "bad")
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(str(p) for p, _ in corpus.values()) + "\n", encoding="utf-8")
    predictor = Predictor.from_path(models["onnx"])
    recs = {r["path"]: r for r in predict_files([listing], predictor, detector, FAST4)}
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
    base = next(iter(predict_files([image], predictor, detector, QUIET)))
    assert base["status"] == "ok"
    side = max(f["box"][2] - f["box"][0] for f in base["faces"])
    predictor.contract = predictor.contract.with_face_crop(min_face=side + 50, frames_per_video=3)
    rec = next(iter(predict_files([image], predictor, detector, QUIET)))
    assert rec["status"] == "no_face" and rec["n_faces"] == 0 and "px" in rec["error"]
    clip = next(iter(predict_files([models["media"] / "sub" / "clip.mp4"], predictor, detector, QUIET)))
    assert clip["n_frames"] == 3  # the contract's frames_per_video when the caller gives none


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _read(path: Path) -> list[dict]:
    if path.suffix == ".csv":
        return list(csv.DictReader(path.open(encoding="utf-8", newline="")))
    return _jsonl(path)


def test_records_are_evidence_grade_with_timestamps_and_a_run_header(tmp_path: Path, models: dict[str, Path]) -> None:
    out = tmp_path / "p.jsonl"
    settings = PredictSettings(frames=4, aggregate="max", progress=False)
    summary = run_predict([models["media"]], models["onnx"], out, settings, argv=["deepdetect-predict", "x"])
    recs = {r["kind"]: r for r in _jsonl(out)}
    for kind, rec in recs.items():
        path = Path(rec["path"])
        assert rec["abs_path"] == str(path.absolute()) and rec["name"] == path.name
        assert rec["size_bytes"] == path.stat().st_size and rec["run_id"] == summary.run_id
        assert rec["scanned_at"].endswith("+00:00") and rec["tool_version"] == "0.1.0"
        assert rec["operating_point"] == {
            "threshold": 0.4, "source": "model", "target_fpr": None, "val_fpr": None, "val_tpr": None
        }  # fmt: skip
        lo, hi = rec["score_interval"]
        assert rec["aggregate"] == "max" and rec["score"] == hi and lo <= hi
        times = [f["time_s"] for f in rec["faces"]]
        assert times == ([0.0] * len(times) if kind == "image" else [f["frame_index"] / 5 for f in rec["faces"]])
    assert len({f["time_s"] for f in recs["video"]["faces"]}) > 1  # frames at different times
    header = json.loads(run_header_path(out).read_text())
    assert header["run_id"] == summary.run_id and header["status"] == "finished" and header["finished_at"]
    assert header["model"]["name"] == "test_efficientnet" and header["operating_point"]["source"] == "model"
    assert header["settings"]["aggregate"] == "max" and header["argv"] == ["deepdetect-predict", "x"]
    assert header["counts"]["status"] == {"ok": 2}


def test_topk_aggregate_of_frame_scores(models: dict[str, Path], detector: FaceDetector) -> None:
    predictor = Predictor.from_path(models["onnx"])
    settings = PredictSettings(frames=4, aggregate="topk", topk=2, progress=False)
    (rec,) = predict_files([models["media"] / "sub" / "clip.mp4"], predictor, detector, settings)
    per_frame: dict[int, float] = {}
    for face in rec["faces"]:
        per_frame[face["frame_index"]] = max(per_frame.get(face["frame_index"], 0.0), face["score"])
    top2 = sorted(per_frame.values(), reverse=True)[:2]
    assert rec["aggregate"] == "topk" and rec["aggregate_k"] == 2
    assert rec["score"] == pytest.approx(np.mean(top2), abs=1e-6)


def test_fpr_picks_the_operating_point_from_the_stored_curve(
    tmp_path: Path, models: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    image = str(models["media"] / "astronaut.jpg")
    out = tmp_path / "fpr.jsonl"
    assert main([image, "--model", str(models["roc_onnx"]), "--output", str(out), "--fpr", "0.01", "--quiet"]) == 0
    (rec,) = _jsonl(out)
    assert rec["operating_point"] == {
        "threshold": 0.45, "source": "fpr", "target_fpr": 0.01, "val_fpr": 0.01, "val_tpr": 0.7
    }  # fmt: skip
    assert rec["threshold"] == 0.45 and rec["label"] == ("fake" if rec["score"] >= 0.45 else "real")
    assert "val TPR 0.7" in capsys.readouterr().out
    out2 = tmp_path / "model.jsonl"
    assert main([image, "--model", str(models["roc_onnx"]), "--output", str(out2), "--quiet"]) == 0
    assert _jsonl(out2)[0]["operating_point"]["source"] == "model"
    assert _jsonl(out2)[0]["operating_point"]["val_tpr"] == 0.7
    out3 = tmp_path / "thr.jsonl"
    args = [image, "--model", str(models["roc_onnx"]), "--output", str(out3), "--threshold", "0.3", "--quiet"]
    assert main(args) == 0
    assert _jsonl(out3)[0]["operating_point"] == {
        "threshold": 0.3, "source": "threshold", "target_fpr": None, "val_fpr": 0.05, "val_tpr": 0.9
    }  # fmt: skip
    capsys.readouterr()
    # a model without a stored curve: one line, exit 2, nothing written
    out4 = tmp_path / "none.jsonl"
    assert main([image, "--model", str(models["onnx"]), "--output", str(out4), "--fpr", "0.01"]) == 2
    err = capsys.readouterr().err
    assert "--fpr" in err and "no" in err and len(err.strip().splitlines()) == 1 and not out4.exists()
    with pytest.raises(SystemExit) as exc:
        main([image, "--model", str(models["roc_onnx"]), "--threshold", "0.3", "--fpr", "0.01"])
    assert exc.value.code == 2


@pytest.fixture
def three_faces(tmp_path: Path) -> list[Path]:
    from skimage.data import astronaut

    img = astronaut()
    folder = tmp_path / "faces"
    folder.mkdir()
    paths = []
    for i, (y, x) in enumerate([(0, 100), (10, 120), (20, 90)]):
        paths.append(folder / f"face{i}.png")
        Image.fromarray(img[y : y + 260, x : x + 260]).resize((100, 100)).save(paths[-1])  # small: fast MTCNN
    return paths


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_output_refuses_overwrites_and_resumes_after_a_kill(
    tmp_path: Path,
    models: dict[str, Path],
    three_faces: list[Path],
    suffix: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = tmp_path / f"out{suffix}"
    folder = str(three_faces[0].parent)

    def run(*extra: str) -> int:
        return main([folder, "--model", str(models["onnx"]), "--output", str(out), "--quiet", *extra])

    assert run() == 0
    first = out.read_bytes()
    assert len(_read(out)) == 3
    capsys.readouterr()
    assert run() == 2  # exists: refused, one line, untouched
    err = capsys.readouterr().err
    assert "--overwrite" in err and len(err.strip().splitlines()) == 1 and out.read_bytes() == first
    with pytest.raises(SystemExit):
        run("--overwrite", "--resume")
    assert run("--overwrite") == 0
    recs = _read(out)
    assert len(recs) == 3 and len({r["run_id"] for r in recs}) == 1 and recs[0]["run_id"] not in first.decode()

    # a killed batch: one complete record, then half of the next line
    lines = out.read_bytes().splitlines(keepends=True)
    head = 2 if suffix == ".csv" else 1  # CSV: header + one row
    kept = _read(out)[0]
    out.write_bytes(b"".join(lines[:head]) + lines[head][: len(lines[head]) // 2])
    assert run("--resume") == 0
    recs = _read(out)
    assert sorted(r["abs_path"] for r in recs) == sorted(str(p.absolute()) for p in three_faces)  # each once
    assert len({r["run_id"] for r in recs}) == 2  # the kept record's run and the resumed one
    assert recs[0] == kept  # the complete record stays as it was
    header = json.loads(run_header_path(out).read_text())
    assert len(header["previous_runs"]) >= 1 and header["counts"]["resumed"] == 1 and header["counts"]["scored"] == 2

    assert run("--resume") == 0 and len(_read(out)) == 3  # nothing left to do
    Image.open(three_faces[1]).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(three_faces[1])  # a changed file
    import deepdetect.inference.predict as predict_module

    hashed: list[str] = []
    real_sha = predict_module.sha256_file
    monkeypatch.setattr(predict_module, "sha256_file", lambda p: hashed.append(str(p)) or real_sha(p))
    assert run("--resume") == 0
    assert sorted(hashed) == sorted(map(str, three_faces))  # each input hashed once, the changed one too
    recs = _read(out)
    assert len(recs) == 4 and [r["abs_path"] for r in recs].count(str(three_faces[1].absolute())) == 2
    assert len({r["sha256"] for r in recs if r["abs_path"] == str(three_faces[1].absolute())}) == 2


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has CUDA")
@pytest.mark.parametrize("kind", ["onnx", "run"])
def test_device_cuda_without_cuda_is_a_usage_error(
    tmp_path: Path, models: dict[str, Path], kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    image = str(models["media"] / "astronaut.jpg")
    assert main([image, "--model", str(models[kind]), "--output", str(tmp_path / "o.jsonl"), "--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert "CUDA" in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_explain_top_n_with_an_onnx_model(tmp_path: Path, models: dict[str, Path], three_faces: list[Path]) -> None:
    out, explain = tmp_path / "e.jsonl", tmp_path / "explain"
    settings = PredictSettings(threshold=0.0, explain_dir=str(explain), explain_top=1, progress=False)
    summary = run_predict([three_faces[0].parent], models["onnx"], out, settings)
    recs = _jsonl(out)
    assert summary.explained == 1 and all(r["label"] == "fake" for r in recs)
    explained = [r for r in recs if r["explanation"]]
    assert len(explained) == 1 and explained[0]["score"] == max(r["score"] for r in recs)  # the top one
    png = Image.open(explained[0]["explanation"])
    assert min(png.size) >= 320 and Path(explained[0]["explanation"]).parent == explain


def explained_png_name(recs: list[dict[str, object]]) -> str:
    return next(Path(str(r["explanation"])).name for r in recs if r.get("explanation"))


def test_report_flag_writes_the_triage_page_with_the_explanation(
    tmp_path: Path, models: dict[str, Path], three_faces: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    out, page = tmp_path / "r.jsonl", tmp_path / "triage.html"
    args = [str(three_faces[0].parent), "--model", str(models["onnx"]), "--output", str(out), "--quiet"]
    assert (
        main(
            [*args, "--threshold", "0", "--explain", str(tmp_path / "ex"), "--explain-top", "1", "--report", str(page)]
        )
        == 0
    )
    html = page.read_text(encoding="utf-8")
    recs = _jsonl(out)
    assert f"triage page: {page}" in capsys.readouterr().out
    assert all(Path(r["path"]).name in html for r in recs)  # one row per file
    assert html.count('<img src="data:image/jpeg;base64,') >= 1 + len(recs)  # thumbnails + the explanation, inline
    assert 'alt="explanation"' in html and explained_png_name(recs) not in html  # embedded, not linked
    assert "http://" not in html and "https://" not in html


class _TopLeft(Predictor):
    """Scores a crop by the brightness of its top-left quadrant: hiding that region must be what matters."""

    def __init__(self, base: Predictor) -> None:
        self.contract, self.batch_size, self.calls = base.contract, 16, 0

    def _logits(self, batch: np.ndarray) -> np.ndarray:
        self.calls += 1
        h, w = batch.shape[2:]
        return 0.5 * batch[:, :, : h // 2, : w // 2].mean(axis=(1, 2, 3))


def test_occlusion_map_finds_the_region_the_score_depends_on(models: dict[str, Path]) -> None:
    predictor = _TopLeft(Predictor.from_path(models["onnx"]))
    crop = np.full((64, 64, 3), 230, dtype=np.uint8)
    heat, base = occlusion_map(predictor, crop)
    assert heat.shape == (64, 64) and base > 0.5
    assert heat[:24, :24].min() > 0.02 and np.abs(heat[40:, 40:]).max() < 1e-6
    assert predictor.calls <= 4  # occluded copies go through the scorer in batches


class _FailsOnGrey(Predictor):
    """Delegates to a real model, but fails on any call that holds a grey crop (one bad file in a batch)."""

    def __init__(self, base: Predictor) -> None:
        self.base, self.contract, self.batch_size, self.calls = base, base.contract, base.batch_size, 0

    def score_crops(self, crops):  # type: ignore[no-untyped-def]
        self.calls += 1
        if any(np.array_equal(c[..., 0], c[..., 1]) for c in crops):
            raise RuntimeError("grey crop")
        return self.base.score_crops(crops)


@pytest.fixture
def mixed_inputs(tmp_path: Path, models: dict[str, Path], three_faces: list[Path]) -> list[Path]:
    """Faces, a corrupt file, a missing one, a video and a grey face, in an order the pipeline must keep."""
    bad = tmp_path / "corrupt.jpg"
    bad.write_bytes(b"\xff\xd8\xff not a jpeg")
    grey = tmp_path / "grey.png"
    Image.open(three_faces[0]).convert("L").convert("RGB").save(grey)
    clip = models["media"] / "sub" / "clip.mp4"
    return [three_faces[0], bad, clip, three_faces[1], tmp_path / "missing.png", grey, three_faces[2]]


def test_pipeline_keeps_order_and_scores_of_the_one_file_path(
    models: dict[str, Path], mixed_inputs: list[Path]
) -> None:
    """Workers + crops batched across files give the records, in input order, that score_file gives one by one."""
    from deepdetect.faces.detect import torch_threads
    from deepdetect.inference.predict import RunInfo, predict_detector, score_file

    predictor = Predictor.from_path(models["onnx"])
    detector = predict_detector(predictor.contract)
    seq = PredictSettings(frames=3, progress=False, workers=0, batch_size=4)
    run = RunInfo.start(predictor, seq)
    with torch_threads(1):  # as predict_files runs it (fast on a busy machine)
        alone = [score_file(p, predictor, detector, seq, run)[0] for p in mixed_inputs if p.exists()]
    par = PredictSettings(frames=3, progress=False, workers=2, batch_size=4)
    piped = list(predict_files(mixed_inputs, predictor, detector, par, run))
    assert [r["path"] for r in piped] == [str(p) for p in mixed_inputs]
    statuses = [r["status"] for r in piped]
    assert statuses == ["ok", "unreadable", "ok", "ok", "not_found", "ok", "ok"]
    piped = [r for r in piped if r["status"] != "not_found"]
    for a, b in zip(alone, piped, strict=True):
        assert a["status"] == b["status"] and a["n_faces"] == b["n_faces"] and a["sha256"] == b["sha256"]
        if a["score"] is not None:
            assert abs(a["score"] - b["score"]) <= 1e-5
            for fa, fb in zip(a["faces"], b["faces"], strict=True):
                assert fa["box"] == fb["box"] and abs(fa["score"] - fb["score"]) <= 1e-5


def test_pipeline_a_failing_model_call_costs_only_its_file(models: dict[str, Path], mixed_inputs: list[Path]) -> None:
    from deepdetect.inference.predict import predict_detector

    base = Predictor.from_path(models["onnx"])
    predictor = _FailsOnGrey(base)
    settings = PredictSettings(frames=3, progress=False, workers=2, batch_size=64)  # one batch for every file
    recs = {
        Path(r["path"]).name: r
        for r in predict_files(mixed_inputs, predictor, predict_detector(base.contract), settings)
    }
    assert recs["grey.png"]["status"] == "error" and "model failed" in recs["grey.png"]["error"]
    assert recs["grey.png"]["score"] is None and recs["grey.png"]["sha256"]
    assert all(recs[p.name]["status"] == "ok" for p in [*mixed_inputs[:1], *mixed_inputs[2:4], mixed_inputs[6]])
    assert predictor.calls >= 2  # the shared call failed, then each file alone


def test_pipeline_runs_detection_with_one_torch_thread_and_restores_it(
    models: dict[str, Path], three_faces: list[Path]
) -> None:
    import torch

    from deepdetect.inference.predict import predict_detector

    predictor = Predictor.from_path(models["onnx"])
    real = predict_detector(predictor.contract)
    seen: list[int] = []

    class Spy:
        min_face_size, batch_size, device = real.min_face_size, real.batch_size, real.device

        def detect(self, frames):  # type: ignore[no-untyped-def]
            seen.append(torch.get_num_threads())
            return real.detect(frames)

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        recs = list(predict_files(three_faces, predictor, Spy(), PredictSettings(progress=False)))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert [r["status"] for r in recs] == ["ok"] * 3 and seen == [1, 1, 1]


def test_predict_detector_follows_the_contract(models: dict[str, Path]) -> None:
    from deepdetect.inference.predict import predict_detector
    from deepdetect.inference.settings import SettingsError

    card = Predictor.from_path(models["onnx"]).contract
    det = predict_detector(card.with_face_crop(min_face=40.0))
    assert det.min_face_size == 20 and det.downscale is None  # default fraction 0.5: MTCNN's own 20 px search
    det = predict_detector(card.with_face_crop(min_face=40.0), min_face_fraction=1.0)
    assert det.min_face_size == 40 and det.downscale == pytest.approx(0.5)  # detected on a half-size copy
    det = predict_detector(card.with_face_crop(min_face=120.0, detector_min_face_size=30))
    assert det.min_face_size == 60 and det.downscale == pytest.approx(30 / 60)  # never under the contract's floor
    det = predict_detector(card.with_face_crop(min_face=None), min_face_fraction=1.0)
    assert det.min_face_size == 20 and det.downscale is None
    with pytest.raises(SettingsError):
        PredictSettings(detect_min_face_fraction=0.0)


def test_ordered_prefetch_is_ordered_bounded_and_lazy() -> None:
    import threading
    import time

    from deepdetect.utils.pool import ordered_prefetch

    pulled: list[int] = []

    def items():  # type: ignore[no-untyped-def]
        for i in range(20):
            pulled.append(i)
            yield i

    def slow(i: int) -> tuple[int, str]:
        time.sleep(0.01 * (i % 3))  # later items often finish first
        return i, threading.current_thread().name

    out = []
    for value, thread in ordered_prefetch(slow, items(), workers=2, ahead=3):
        assert len(pulled) - value <= 3  # never more than `ahead` items beyond the one being consumed
        out.append(value)
        assert thread.startswith("prefetch")
    assert out == list(range(20))
    pulled.clear()
    assert [v for v, _ in ordered_prefetch(slow, items(), workers=0, ahead=3)] == list(range(20))
    pulled.clear()
    gen = ordered_prefetch(slow, items(), workers=2, ahead=3)
    next(gen)
    gen.close()
    assert len(pulled) <= 4
