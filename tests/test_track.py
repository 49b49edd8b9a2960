"""Tracked face detection in videos: the full detector on keyframes, MTCNN's last two stages in between."""

from __future__ import annotations

import numpy as np
import pytest

from deepdetect.faces.detect import FaceDetector, jitter_boxes
from deepdetect.faces.track import box_iou, detect_tracked, distinct_boxes, interpolate_boxes, keyframes
from face_images import astronaut, blank

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector(batch=False, frame_workers=2)


def moving_face(n: int, step: int, width: int = 1000) -> list[np.ndarray]:
    """`n` frames of the astronaut's head (about 110 px) moving `step` px to the right per frame on grey."""
    head = astronaut()[0:240, 120:340]
    frames = []
    for k in range(n):
        canvas = np.full((300, width, 3), 110, dtype=np.uint8)
        x = 20 + step * k
        canvas[30:270, x : x + head.shape[1]] = head
        frames.append(canvas)
    return frames


def best_iou(a: np.ndarray, b: np.ndarray) -> float:
    return float(box_iou(a, b).max()) if len(a) and len(b) else 0.0


def test_keyframes_cover_both_ends() -> None:
    assert keyframes(0, 4) == []
    assert keyframes(1, 4) == [0]
    assert keyframes(9, 4) == [0, 4, 8]
    assert keyframes(10, 4) == [0, 4, 8, 9]
    assert keyframes(5, 1) == [0, 1, 2, 3, 4]


def test_interpolate_pairs_each_face_with_its_own_across_a_long_move() -> None:
    a = np.array([[0, 0, 100, 100], [500, 0, 540, 40]], np.float32)  # a big face and a small one
    b = np.array([[520, 10, 560, 50], [300, 0, 400, 100]], np.float32)  # both moved; the big one by 3 widths
    mid = interpolate_boxes(a, b, 0.5)
    assert len(mid) == 2
    assert best_iou(mid, np.array([[150, 0, 250, 100]], np.float32)) > 0.99  # halfway for the big face
    assert best_iou(mid, np.array([[510, 5, 550, 45]], np.float32)) > 0.99
    assert interpolate_boxes(a[:1], np.array([[0, 0, 400, 400]], np.float32), 0.5).shape == (0, 4)  # 4x the size
    assert distinct_boxes(np.concatenate([a, a + 1, b])).shape == (4, 4)
    assert jitter_boxes(a).shape == (30, 4)


def test_refine_confirms_faces_and_rejects_the_rest(detector: FaceDetector) -> None:
    frame = moving_face(1, 0)[0]
    (full,) = detector.detect([frame])
    assert len(full) == 1
    again = detector.refine(frame, full.boxes)
    assert len(again) == 1 and best_iou(again.boxes, full.boxes) > 0.9 and again.scores[0] > 0.95
    shifted = detector.refine(frame, full.boxes + np.array([25, 15, 25, 15], np.float32))  # a frame later
    assert len(shifted) == 1 and best_iou(shifted.boxes, full.boxes) > 0.8
    assert len(detector.refine(frame, np.array([[700, 50, 820, 170]], np.float32))) == 0  # grey, no face
    assert len(detector.refine(blank(), full.boxes)) == 0
    assert len(detector.refine(frame, np.zeros((0, 4), np.float32))) == 0


@pytest.mark.parametrize("step", [30, 130])  # slower and faster than the face's own width per frame
def test_tracked_detection_finds_the_face_the_full_detector_finds(detector: FaceDetector, step: int) -> None:
    frames = moving_face(6, step)
    full = detector.detect(frames)
    done: list[int] = []
    tracked = detect_tracked(detector, frames, every=4, chunk=2, progress=done.append)
    assert sum(done) == len(frames)
    assert [len(d) for d in full] == [1] * 6
    assert [len(d) for d in tracked] == [1] * 6
    for f, t in zip(full, tracked, strict=True):
        assert best_iou(f.boxes, t.boxes) > 0.8


def test_every_one_is_the_full_detector_and_a_face_seen_only_between_keyframes_is_missed(
    detector: FaceDetector,
) -> None:
    frames = moving_face(5, 30)
    plain = detector.detect(frames)
    same = detect_tracked(detector, frames, every=1)
    for a, b in zip(plain, same, strict=True):
        np.testing.assert_allclose(a.boxes, b.boxes)
    grey = np.full_like(frames[0], 110)
    brief = [grey, grey, frames[2], grey, grey]  # the face shows in frame 2 only; keyframes are 0 and 4
    assert [len(d) for d in detect_tracked(detector, brief, every=4)] == [0, 0, 0, 0, 0]
    assert [len(d) for d in detect_tracked(detector, brief, every=2)] == [0, 0, 1, 0, 0]


def test_predict_tracks_only_when_sampled_frames_are_close_in_time() -> None:
    from deepdetect.inference.predict import TRACK_MAX_GAP_S, tracking_interval

    frame = np.zeros((2, 2, 3), np.uint8)
    close = [(i * 3, frame) for i in range(32)]  # 3 frames apart at 25 fps: 0.12 s
    far = [(i * 30, frame) for i in range(32)]  # 1.2 s apart: people move too far, scenes cut
    assert tracking_interval(close, 25.0, 4) == 4
    assert TRACK_MAX_GAP_S < 30 / 25.0 and tracking_interval(far, 25.0, 4) == 1
    assert tracking_interval(close, 0.0, 4) == 1  # unknown frame rate
    assert tracking_interval(close, 25.0, 1) == 1
