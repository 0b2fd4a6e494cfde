"""The station's 1:1 face check on real photos seen as 640-px camera frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from biometrics.face import MATCH_THRESHOLD, encode_bytes
from station.camera import PhotoFrames
from station.facecheck import FaceCheck


@pytest.fixture(scope="module")
def templates(faces: Path) -> dict[str, np.ndarray]:
    """Templates enrolled the way the CEC does (whole enrolment photo)."""
    out = {}
    for person in ("obama", "biden"):
        e = encode_bytes((faces / person / "enroll.jpg").read_bytes())
        assert e.encoding is not None
        out[person] = e.encoding
    return out


def _frame(faces: Path, rel: str) -> np.ndarray:
    frame = PhotoFrames([faces / rel]).read()
    assert frame is not None
    return frame


@pytest.fixture(scope="module")
def obama_frame(faces: Path) -> np.ndarray:
    return _frame(faces, "obama/probe1.jpg")


def test_the_enrolled_voter_matches(obama_frame: np.ndarray, templates: dict) -> None:
    r = FaceCheck().check(obama_frame, templates["obama"])
    assert r.status == "match" and r.matched and not r.retry
    assert r.distance is not None and r.distance <= MATCH_THRESHOLD
    assert r.seconds > 0


def test_someone_else_does_not_match(obama_frame: np.ndarray, templates: dict) -> None:
    r = FaceCheck().check(obama_frame, templates["biden"])
    assert r.status == "no_match" and not r.matched and not r.retry
    assert r.distance is not None and r.distance > MATCH_THRESHOLD


def test_small_camera_frame_is_still_checked(faces: Path, templates: dict) -> None:
    frame = _frame(faces, "obama/probe_small.jpg")
    assert frame.shape == (240, 320, 3)
    assert FaceCheck().check(frame, templates["obama"]).status == "match"


def test_empty_frame_asks_the_voter_to_look_at_the_camera(templates: dict) -> None:
    blank = np.full((480, 640, 3), 200, dtype=np.uint8)
    r = FaceCheck().check(blank, templates["obama"])
    assert r.status == "no_face" and r.distance is None and r.retry


def test_several_faces_are_refused(faces: Path, templates: dict) -> None:
    frame = _frame(faces, "_multiple_faces/two_people.jpg")
    r = FaceCheck().check(frame, templates["obama"])
    assert r.status == "multiple_faces" and r.distance is None and r.retry


def test_a_frame_that_is_not_an_rgb_image_is_unreadable(templates: dict) -> None:
    r = FaceCheck().check(np.zeros((480, 640), dtype=np.uint8), templates["obama"])
    assert r.status == "unreadable" and r.distance is None


def test_threshold_is_respected_inclusively(obama_frame: np.ndarray, templates: dict) -> None:
    d = FaceCheck().check(obama_frame, templates["obama"]).distance
    assert d is not None
    assert FaceCheck(threshold=d).check(obama_frame, templates["obama"]).status == "match"
    below = FaceCheck(threshold=d - 1e-4).check(obama_frame, templates["obama"])
    assert below.status == "no_match" and below.distance == pytest.approx(d)


def test_time_comes_from_the_injected_clock(templates: dict) -> None:
    ticks = iter([100.0, 100.25])
    r = FaceCheck(clock=lambda: next(ticks)).check(
        np.zeros((48, 64, 3), dtype=np.uint8), templates["obama"]
    )
    assert r.seconds == pytest.approx(0.25)


@pytest.mark.parametrize("threshold", [0.0, -0.1, 2.5, float("nan")])
def test_a_nonsense_threshold_is_refused(threshold: float) -> None:
    with pytest.raises(ValueError, match="threshold"):
        FaceCheck(threshold=threshold)


def test_a_malformed_template_is_refused(obama_frame: np.ndarray) -> None:
    with pytest.raises(ValueError, match="128"):
        FaceCheck().check(obama_frame, np.zeros(64))
    with pytest.raises(ValueError, match="128"):
        FaceCheck().check(obama_frame, np.full(128, np.nan))
