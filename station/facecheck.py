"""The station's 1:1 face check: is the person in front of the camera the enrolled voter?

The frame goes through `biometrics.face.encode_face`, the same detect + encode
path the CEC used to enrol the template, and exactly one face is required (none:
"look at the camera"; several: "only the voter in front of the camera").  The
distance threshold is a setting; its default and the measurements behind it
are in docs/face-threshold.md.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from biometrics.face import MATCH_THRESHOLD, UPSAMPLE, Verdict, verify

FaceStatus = Verdict  # "match" | "no_match" | "no_face" | "multiple_faces" | "unreadable"


@dataclass(frozen=True)
class FaceResult:
    """One check: its outcome, the distance when a single face was found, and how long it took."""

    status: FaceStatus
    distance: float | None
    seconds: float

    @property
    def matched(self) -> bool:
        return self.status == "match"

    @property
    def retry(self) -> bool:
        """True if another frame may help (no face / several faces), not a verdict on the voter."""
        return self.status in ("no_face", "multiple_faces", "unreadable")


class FaceCheck:
    """1:1 verification of a camera frame against one enrolled template.

    A distance at or below `threshold` is a match (as face_recognition's
    compare_faces counts it).
    """

    def __init__(
        self,
        threshold: float = MATCH_THRESHOLD,
        *,
        upsample: int = UPSAMPLE,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if not (math.isfinite(threshold) and 0.0 < threshold < 2.0):
            raise ValueError(f"face threshold must be between 0 and 2, not {threshold}")
        if upsample < 0:
            raise ValueError(f"upsample must be 0 or more, not {upsample}")
        self.threshold = float(threshold)
        self.upsample = upsample
        self._clock = clock

    def check(self, frame_rgb: np.ndarray, template: np.ndarray) -> FaceResult:
        """Compare the one face in an RGB uint8 frame with a template; ValueError if malformed."""
        start = self._clock()
        status, distance = verify(frame_rgb, template, self.threshold, upsample=self.upsample)
        return FaceResult(status, distance, self._clock() - start)
