"""What more than one bench needs: where the shared photos are, the issue's budget, 640x480 frames.

The one-core set-up and the timing helpers are in `bench/__init__.py` (they must
run before numpy, OpenCV or dlib load); this module holds the data side.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
FACES = Path(os.environ.get("SHAILOO_FACES", REPO.parent / "shared" / "data" / "faces"))
BUDGET = 0.5  # seconds: the aim for the p95 decision time
FRAME_W, FRAME_H = 640, 480


def letterbox(rgb: np.ndarray, w: int = FRAME_W, h: int = FRAME_H) -> np.ndarray:
    """The whole photo fitted into a w x h grey frame (no crop), as a 640x480 camera frames a voter.

    Scaled with area interpolation so its long side fills the frame, centred, grey bars
    on the other side; the result is always exactly h x w x 3, RGB uint8.
    """
    import cv2

    scale = min(w / rgb.shape[1], h / rgb.shape[0])
    size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
    fitted = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    frame = np.full((h, w, 3), 128, dtype=np.uint8)
    y, x = (h - size[1]) // 2, (w - size[0]) // 2
    frame[y : y + size[1], x : x + size[0]] = fitted
    return frame
