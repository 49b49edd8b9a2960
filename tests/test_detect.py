"""Face detection, cropping and tracking on real face images."""

from __future__ import annotations

import numpy as np
import pytest

from deepdetect.faces.crop import crop_face, square_box
from deepdetect.faces.detect import Detections, FaceDetector, downscale_factor, pyramid_for_min_face, resolve_batch
from deepdetect.faces.track import box_iou, link_tracks, select_faces
from face_images import astronaut, blank, lfw_face

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector(batch=False)


def test_astronaut_face_found_with_landmarks(detector: FaceDetector) -> None:
    (det,) = detector.detect([astronaut()])
    assert len(det) >= 1
    best = int(np.argmax(det.scores))
    x1, y1, x2, y2 = det.boxes[best]
    assert 150 < x1 < x2 < 300 and 30 < y1 < y2 < 200
    assert det.scores[best] > 0.99
    pts = det.landmarks[best]
    assert pts.shape == (5, 2)
    assert np.all((pts[:, 0] > x1) & (pts[:, 0] < x2) & (pts[:, 1] > y1) & (pts[:, 1] < y2))
    assert pts[0, 0] < pts[1, 0]  # left eye left of right eye


def test_lfw_faces_found(detector: FaceDetector) -> None:
    dets = detector.detect([lfw_face(i) for i in range(0, 20, 2)])
    assert all(len(d) >= 1 for d in dets)
    assert detector.detect([blank()])[0].boxes.shape == (0, 4)


def test_batched_equals_per_frame_and_downscale_maps_back() -> None:
    frames = [lfw_face(i) for i in range(3)]
    per = FaceDetector(batch=False).detect(frames)
    bat = FaceDetector(batch=True).detect(frames)
    for a, b in zip(per, bat, strict=True):
        np.testing.assert_allclose(a.boxes, b.boxes, atol=1.0)
    img = astronaut()
    full = FaceDetector(batch=False).detect([img])[0]
    half = FaceDetector(batch=False, downscale=0.5).detect([img])[0]
    assert box_iou(full.boxes[:1], half.boxes[:1])[0, 0] > 0.8  # boxes are back in full-res pixels
    assert downscale_factor(1080, 1920, 960) == 0.5
    assert downscale_factor(100, 100, 960) == 1.0
    assert resolve_batch("auto", "cuda") is True
    with pytest.raises(ValueError):
        resolve_batch("sometimes", "cpu")  # type: ignore[arg-type]


def test_square_box_margin_and_clipping() -> None:
    assert square_box((40, 40, 60, 80), 0.0, 200, 200) == (30, 40, 70, 80)
    x1, y1, x2, y2 = square_box((40, 40, 60, 80), 0.5, 200, 200)
    assert (x2 - x1, y2 - y1) == (60, 60) and (x1 + x2) / 2 == 50
    # near the corner: shifted inside, still square
    x1, y1, x2, y2 = square_box((0, 0, 20, 20), 1.0, 100, 100)
    assert (x1, y1) == (0, 0) and x2 - x1 == y2 - y1 == 40
    # bigger than the frame: clipped to the shorter side
    x1, y1, x2, y2 = square_box((10, 10, 90, 50), 1.0, 100, 60)
    assert y2 - y1 == 60 and x2 - x1 == 60 and x1 >= 0 and x2 <= 100
    with pytest.raises(ValueError):
        square_box((5, 5, 5, 9), 0.3, 10, 10)


def test_crop_face_maps_landmarks() -> None:
    frame = np.zeros((100, 100, 3), np.uint8)
    frame[40:60, 40:60] = 255
    lm = np.array([[50, 50]] * 5, np.float32)
    crop, pts = crop_face(frame, (40, 40, 60, 60), lm, margin=1.0, size=80)
    assert crop.shape == (80, 80, 3) and crop.dtype == np.uint8
    np.testing.assert_allclose(pts, [[40, 40]] * 5)  # the centre stays the centre
    assert crop[40, 40].min() == 255 and crop[2, 2].max() == 0


def _det(*boxes: tuple[float, float, float, float]) -> Detections:
    b = np.array(boxes, np.float32).reshape(-1, 4)
    return Detections(b, np.full(len(b), 0.99, np.float32), np.zeros((len(b), 5, 2), np.float32))


def test_link_tracks_by_iou_with_gaps() -> None:
    a, b = (0, 0, 20, 20), (50, 50, 80, 80)
    frames = [_det(a, b), _det((2, 0, 22, 20), b), _det(b), _det((3, 1, 23, 21)), _det((100, 100, 120, 120))]
    ids = link_tracks(frames, iou_threshold=0.3, max_gap=2)
    assert [list(x) for x in ids] == [[0, 1], [0, 1], [1], [0], [2]]
    # a gap longer than max_gap starts a new track
    ids = link_tracks([_det(a), _det(), _det(), _det(a)], max_gap=1)
    assert [list(x) for x in ids] == [[0], [], [], [1]]


def test_select_faces() -> None:
    det = _det((0, 0, 30, 30), (50, 50, 150, 150), (0, 100, 10, 110))
    det.scores[1] = 0.5
    assert list(select_faces(det, "all", min_size=20, min_score=0.9)) == [0]
    assert list(select_faces(det, "largest", min_size=0, min_score=0.0)) == [1]
    assert list(select_faces(det, "largest", min_size=20, min_score=0.9)) == [0]
    assert len(select_faces(Detections(), "largest")) == 0
    with pytest.raises(ValueError):
        select_faces(det, "biggest")


def test_pyramid_for_min_face_maps_the_search_floor_to_mtcnns() -> None:
    assert pyramid_for_min_face(40, 0.8) == (32, 20 / 32)
    assert pyramid_for_min_face(40, 1.0) == (40, 0.5)
    assert pyramid_for_min_face(20, 1.0) == (20, None)  # at the floor: no downscale
    assert pyramid_for_min_face(0, 0.8) == (20, None)  # no min_face recorded: MTCNN's default
    with pytest.raises(ValueError):
        pyramid_for_min_face(40, 0)


def test_tied_pyramid_finds_the_large_face_and_threads_can_share_a_detector() -> None:
    """Detection with the contract's pyramid finds the big face; two threads sharing one detector on frames of
    different sizes (different per-call pyramids), and one call's frames spread over 2 threads, get what each frame
    gets alone."""
    from concurrent.futures import ThreadPoolExecutor

    size, scale = pyramid_for_min_face(40, 0.8)
    det = FaceDetector(batch=False, min_face_size=size, downscale=scale)
    img = astronaut()
    tied, full = det.detect([img])[0], FaceDetector(batch=False).detect([img])[0]
    assert box_iou(tied.boxes[:1], full.boxes[:1])[0, 0] > 0.8
    det = FaceDetector(batch=False, min_face_size=40, downscale=256)  # a different pyramid per frame size
    frames = [img, lfw_face(1, canvas=300), img[::2, ::2].copy(), lfw_face(2)] * 2
    alone = [det.detect([f])[0] for f in frames]
    with ThreadPoolExecutor(2) as pool:
        shared = list(pool.map(lambda f: det.detect([f])[0], frames))
    in_parallel = FaceDetector(batch=False, min_face_size=40, downscale=256, frame_workers=2).detect(frames)
    for a, b, c in zip(alone, shared, in_parallel, strict=True):
        np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-3)
        np.testing.assert_allclose(a.boxes, c.boxes, atol=1e-3)  # frames of one call on 2 threads, in order
        np.testing.assert_allclose(a.landmarks, c.landmarks, atol=1e-3)
