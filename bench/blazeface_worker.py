"""BlazeFace boxes for `bench_blazeface.py`, run by a Python that has mediapipe 0.10.x (its wheel bundles the models).

    PYTHON_WITH_MEDIAPIPE blazeface_worker.py FRAMES.npz OUT.json TILE STEP

Every array of FRAMES.npz (RGB uint8) is searched whole and, when TILE > 0 and its long side exceeds 1.5 x TILE,
also in overlapping TILE x TILE tiles STEP apart (BlazeFace's full-range model sees a 192 px input, so small faces in
a large frame need tiles). Writes each image's boxes (x1, y1, x2, y2 in its pixels) and seconds.
"""

from __future__ import annotations

import json
import sys
import time

import mediapipe as mp
import numpy as np


def starts(n: int, tile: int, step: int) -> list[int]:
    """Tile offsets along one side of n pixels: every `step`, the last one flush with the edge."""
    if n <= tile:
        return [0]
    return [*range(0, n - tile, step), n - tile]


def main() -> int:
    frames, out, tile, step = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    images = np.load(frames)
    detector = mp.solutions.face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.3)
    result = {}
    for name in images.files:
        image = np.ascontiguousarray(images[name])
        h, w = image.shape[:2]
        start = time.perf_counter()
        views = [(0, 0, image)]
        if tile and max(h, w) > 1.5 * tile:
            views += [
                (x, y, image[y : y + tile, x : x + tile]) for y in starts(h, tile, step) for x in starts(w, tile, step)
            ]
        boxes = []
        for x0, y0, view in views:
            vh, vw = view.shape[:2]
            for det in detector.process(np.ascontiguousarray(view)).detections or []:
                b = det.location_data.relative_bounding_box
                boxes.append(
                    [x0 + b.xmin * vw, y0 + b.ymin * vh, x0 + (b.xmin + b.width) * vw, y0 + (b.ymin + b.height) * vh]
                )
        result[name] = {"boxes": boxes, "seconds": time.perf_counter() - start}
    with open(out, "w", encoding="utf-8") as fh:
        json.dump(result, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
