"""MTCNN on ONNX Runtime (`faces.mtcnn_ort`) against facenet-pytorch's MTCNN, and predict without PyTorch."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from deepdetect.faces.boxes import box_iou, nms
from deepdetect.faces.detect import FaceDetector
from deepdetect.faces.mtcnn_onnx import mtcnn_onnx_paths, weights_dir, weights_key
from deepdetect.faces.mtcnn_ort import OrtFaceDetector, area_resample, area_resize, integral_image, pyramid_scales
from deepdetect.inference.predict import run_header_path
from deepdetect.inference.settings import PredictSettings, SettingsError
from deepdetect.inference.stages.faces import detector_backend
from face_images import astronaut, lfw_face

pytestmark = pytest.mark.usefixtures("one_torch_thread")

IOU_MIN = 0.95  # per face, against the PyTorch MTCNN
LANDMARK_PX = 2.0


@pytest.fixture(scope="module")
def pair() -> tuple[FaceDetector, OrtFaceDetector]:
    """The PyTorch and the ONNX Runtime MTCNN with the same settings."""
    return FaceDetector(device="cpu"), OrtFaceDetector()


def assert_same_faces(img: np.ndarray, pair: tuple[FaceDetector, OrtFaceDetector]) -> tuple[int, float]:
    """Both detectors find the same faces in `img`: (faces, lowest box IoU)."""
    ref, ort = (d.detect([img])[0] for d in pair)
    assert len(ort) == len(ref)
    if len(ref) == 0:
        return 0, 1.0
    iou = box_iou(ref.boxes, ort.boxes)
    match = iou.argmax(axis=1)
    assert len(set(match.tolist())) == len(ref)  # one to one
    assert iou.max(axis=1).min() >= IOU_MIN
    assert np.abs(ref.landmarks - ort.landmarks[match]).max() <= LANDMARK_PX
    assert np.abs(ref.scores - ort.scores[match]).max() <= 1e-3
    return len(ref), float(iou.max(axis=1).min())


def test_area_resample_is_torch_area_interpolation() -> None:
    """The integral-image resampling gives PyTorch's `interpolate(mode="area")` (MTCNN's `imresample`)."""
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    table = integral_image(img)
    t = torch.as_tensor(img).permute(2, 0, 1)[None].float()
    for size in [(26, 38), (12, 17), (50, 60), (24, 24)]:  # down, down, up, mixed
        want = (torch.nn.functional.interpolate(t, size=size, mode="area") - 127.5) * 0.0078125
        got = area_resample(table, np.array([[0, 37]]), np.array([[0, 53]]), size)
        np.testing.assert_allclose(got, want.numpy(), atol=1e-6)
    # a region, as R-Net's and O-Net's crops are taken
    want = (torch.nn.functional.interpolate(t[:, :, 5:30, 9:40], size=(24, 24), mode="area") - 127.5) * 0.0078125
    got = area_resample(table, np.array([[5, 30]]), np.array([[9, 40]]), (24, 24))
    np.testing.assert_allclose(got, want.numpy(), atol=1e-6)


def test_integral_image_is_exact() -> None:
    """OpenCV's summed-area table equals the sums in int64, also past int32's range (then held in float64)."""
    rng = np.random.default_rng(3)
    for shape in [(37, 53, 3), (1, 1, 3), (2, 4300, 3)]:
        img = rng.integers(0, 256, shape, dtype=np.uint8)
        want = np.zeros((shape[0] + 1, shape[1] + 1, 3), np.int64)
        want[1:, 1:] = img.astype(np.int64).cumsum(0).cumsum(1)
        np.testing.assert_array_equal(integral_image(img), want)
    big = np.full((2900, 2910, 3), 255, np.uint8)  # total 2.15e9 > 2**31 - 1
    table = integral_image(big)
    assert table.dtype == np.float64 and table[-1, -1, 0] == 2900 * 2910 * 255


def test_area_resize_is_area_resample_of_the_whole_image() -> None:
    """The pyramid's two-pass resampling gives exactly the whole-image `area_resample` (hence torch's "area")."""
    rng = np.random.default_rng(2)
    img = rng.integers(0, 256, (61, 47, 3), dtype=np.uint8)
    table = integral_image(img)
    for size in [(43, 33), (30, 23), (12, 12), (61, 47), (80, 50)]:
        want = area_resample(table, np.array([[0, 61]]), np.array([[0, 47]]), size)[0]
        np.testing.assert_array_equal(area_resize(table, size), want)


def test_batched_cascade_gives_the_per_frame_faces(pair: tuple[FaceDetector, OrtFaceDetector]) -> None:
    """Frames of one size through each net together give the records of one frame at a time (and of torch)."""
    frames = [lfw_face(i, canvas=240, offset=(20 + 9 * i, 30 + 7 * i)) for i in range(5)]
    frames.append(np.full((240, 240, 3), 90, np.uint8))  # no face: an empty entry among the others
    frames.append(astronaut()[100:340, 150:390].copy())
    per_frame = OrtFaceDetector(batched=False).detect(frames)
    batched = OrtFaceDetector(batched=True, frame_workers=2, batch_size=3).detect(frames)
    assert sum(len(d) for d in per_frame) >= 5 and len(per_frame[5]) == 0
    for a, b in zip(per_frame, batched, strict=True):
        np.testing.assert_allclose(b.boxes, a.boxes, atol=1e-3)
        np.testing.assert_allclose(b.landmarks, a.landmarks, atol=1e-3)
        np.testing.assert_allclose(b.scores, a.scores, atol=1e-5)
    for img in frames:
        assert_same_faces(img, pair)


def test_nms_union_is_torchvision_nms() -> None:
    from torchvision.ops import nms as tv_nms

    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 100, (300, 2))
    wh = rng.uniform(5, 40, (300, 2))
    boxes = np.concatenate([xy, xy + wh], axis=1).astype(np.float32)
    scores = rng.uniform(0, 1, 300).astype(np.float32)
    for thr in (0.3, 0.5, 0.7):
        want = tv_nms(torch.as_tensor(boxes), torch.as_tensor(scores), thr).numpy()
        np.testing.assert_array_equal(nms(boxes, scores, thr), want)


def test_pyramid_scales_follow_mtcnn() -> None:
    scales = pyramid_scales(100, 200, 20)
    assert scales[0] == pytest.approx(0.6) and scales[1] == pytest.approx(0.6 * 0.709)
    assert 100 * scales[-1] >= 12 > 100 * scales[-1] * 0.709


def test_same_faces_as_torch_on_test_faces(pair: tuple[FaceDetector, OrtFaceDetector]) -> None:
    """Astronaut and LFW faces (one each) and a frame with two LFW faces: same count, IoU >= 0.95, landmarks."""
    two = lfw_face(3, canvas=260, offset=(20, 10))
    two[140:240, 140:240] = lfw_face(7, canvas=100, offset=(0, 0))
    found = [assert_same_faces(img, pair)[0] for img in (astronaut(), lfw_face(0), lfw_face(5), two)]
    assert found[0] == 1 and sum(found) >= 4


def test_refine_matches_torch(pair: tuple[FaceDetector, OrtFaceDetector]) -> None:
    """Tracking's `refine` (R-Net and O-Net on candidate boxes) gives the same faces on both backends."""
    img = astronaut()
    ref = pair[0].detect([img])[0]
    shifted = ref.boxes + np.array([6, -4, 6, -4], np.float32)  # last frame's box, moved
    far = np.array([[400, 400, 460, 460]], np.float32)  # no face there
    cand = np.concatenate([shifted, far])
    a, b = pair[0].refine(img, cand), pair[1].refine(img, cand)
    assert len(a) == len(b) == 1
    assert box_iou(a.boxes, b.boxes)[0, 0] >= IOU_MIN
    assert np.abs(a.landmarks - b.landmarks).max() <= LANDMARK_PX


@pytest.mark.slow
def test_same_faces_as_torch_on_dev_photos(dev_data: Path, pair: tuple[FaceDetector, OrtFaceDetector]) -> None:
    """The dev data's photos (one and many faces, up to 2280 px) and frames of the 1080p clip."""
    from deepdetect.media import read_video_frames

    names = ["couple.jpg", "fnp_multiface.jpg", "selfie-many-people.jpg", "img10.jpg", "img50.jpg", "img1.jpg"]
    faces = 0
    for name in names:
        faces += assert_same_faces(np.asarray(Image.open(dev_data / "photos" / name).convert("RGB")), pair)[0]
    for _, frame in read_video_frames(dev_data / "videos" / "fnp_video_1080p.mp4", 2):
        faces += assert_same_faces(frame, pair)[0]
    assert faces >= 15


def test_onnx_files_are_cached(tmp_path: Path) -> None:
    """Exported once into a folder named by the weights' hash; a second call reuses the files."""
    paths = mtcnn_onnx_paths(tmp_path)
    assert weights_key(weights_dir()) in paths["pnet"].parent.name
    stamps = {n: p.stat().st_mtime_ns for n, p in paths.items()}
    again = mtcnn_onnx_paths(tmp_path)
    assert again == paths and {n: p.stat().st_mtime_ns for n, p in again.items()} == stamps
    assert sorted(p.name for p in paths["pnet"].parent.iterdir()) == ["onet.onnx", "pnet.onnx", "rnet.onnx"]


def test_detector_choice() -> None:
    assert detector_backend("auto", "onnx", "cpu") == "ort"
    assert detector_backend("auto", "torch", "cpu") == "torch"
    assert detector_backend("auto", "onnx", "cuda") == "torch"
    assert detector_backend("torch", "onnx", "cpu") == "torch"
    assert detector_backend("ort", "torch", "cpu") == "ort"
    with pytest.raises(SettingsError, match="unknown detector"):
        PredictSettings(detector="mediapipe")


def test_predict_with_onnx_model_never_imports_torch(tmp_path: Path, mtcnn_onnx_cache: Path) -> None:
    """`deepdetect-predict FILE --model EX/model.onnx`: ORT detector by default, a face, and none of PyTorch, onnx
    or pandas imported (each costs start-up)."""
    from deepdetect.export.pipeline import export
    from test_export import export_cfg, make_tiny_checkpoint

    export(export_cfg(make_tiny_checkpoint(tmp_path / "run"), tmp_path / "ex"))
    image = tmp_path / "astronaut.jpg"
    Image.fromarray(astronaut()).save(image)
    mtcnn_onnx_paths()  # the session's cache holds the ONNX nets (their one-time export needs PyTorch)
    out = tmp_path / "p.jsonl"
    code = f"""
        import json, sys
        from deepdetect.cli.predict import main
        rc = main([{str(image)!r}, "--model", {str(tmp_path / "ex" / "model.onnx")!r}, "--output", {str(out)!r},
                   "--quiet"])
        heavy = {{name: name in sys.modules for name in ("torch", "facenet_pytorch", "onnx", "pandas")}}
        print(json.dumps({{"rc": rc, **heavy}}))
    """
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    # the contract is read through onnxruntime's session, and the record writer needs no pandas (start-up)
    assert '{"rc": 0, "torch": false, "facenet_pytorch": false, "onnx": false, "pandas": false}' in done.stdout
    rec = json.loads(out.read_text().splitlines()[0])
    assert rec["status"] == "ok" and rec["n_faces"] == 1
    assert json.loads(run_header_path(out).read_text())["settings"]["detector"] == "ort"  # auto resolved


def test_prepare_exports_the_nets_ahead_of_predict(tmp_path: Path, mtcnn_onnx_cache: Path, capsys) -> None:
    """`deepdetect-prepare` leaves the three files where predict looks (the session's cache here), once; a cache
    folder that cannot be made is a one-line error, exit 2."""
    from deepdetect.cli.prepare import main

    assert main([]) == 0
    printed = dict(line.split("\t") for line in capsys.readouterr().out.splitlines())
    assert printed == {name: str(path) for name, path in mtcnn_onnx_paths().items()}
    assert all(Path(p).is_file() and Path(p).is_relative_to(mtcnn_onnx_cache) for p in printed.values())
    stamps = [Path(p).stat().st_mtime_ns for p in printed.values()]
    assert main([]) == 0 and [Path(p).stat().st_mtime_ns for p in printed.values()] == stamps  # not again
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert main(["--cache-dir", str(blocker)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("deepdetect-prepare: error: cannot write MTCNN's ONNX files") and err.count("\n") == 1
