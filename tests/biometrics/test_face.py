"""Face encoding on the real shared photos (real face_recognition, no mocks)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from biometrics.face import (
    MATCH_THRESHOLD,
    MAX_SIDE,
    Enrolment,
    encode_bytes,
    encode_face,
    face_distance,
    load_rgb,
)


def _people(faces: Path) -> dict[str, list[Path]]:
    return {
        d.name: sorted(p for p in d.iterdir() if p.suffix.lower() in (".jpg", ".png"))
        for d in sorted(faces.iterdir())
        if d.is_dir() and not d.name.startswith("_")
    }


@pytest.fixture(scope="module")
def encodings(faces: Path) -> dict[Path, Enrolment]:
    out = {}
    for photos in _people(faces).values():
        for p in photos:
            image = load_rgb(p.read_bytes())
            assert image is not None, p
            out[p] = encode_face(image)
    return out


def test_every_shared_photo_gives_one_face(encodings: dict[Path, Enrolment]) -> None:
    for p, e in encodings.items():
        assert e.status == "ok", p
        assert e.encoding is not None and e.encoding.shape == (128,)
        assert e.encoding.dtype == np.float32


def test_genuine_pairs_match_and_impostors_do_not(
    faces: Path, encodings: dict[Path, Enrolment]
) -> None:
    people = _people(faces)
    genuine: list[float] = []
    impostor: list[float] = []
    for a, b in itertools.combinations(encodings, 2):
        ea, eb = encodings[a].encoding, encodings[b].encoding
        assert ea is not None and eb is not None
        (genuine if a.parent == b.parent else impostor).append(face_distance(ea, eb))
    assert len(genuine) >= sum(len(v) - 1 for v in people.values() if len(v) > 1)
    assert max(genuine) < MATCH_THRESHOLD, max(genuine)
    assert min(impostor) > MATCH_THRESHOLD, min(impostor)


def test_small_probe_is_found(faces: Path, encodings: dict[Path, Enrolment]) -> None:
    # 320x240: smaller than MAX_SIDE, so it is not scaled at all
    assert encodings[faces / "obama" / "probe_small.jpg"].status == "ok"


def test_box_is_in_original_pixels(faces: Path, encodings: dict[Path, Enrolment]) -> None:
    import face_recognition

    big = faces / "biden" / "enroll.jpg"  # 970x2204: downscaled before detection
    image = load_rgb(big.read_bytes())
    assert image is not None and max(image.shape[:2]) > MAX_SIDE
    ((top, right, bottom, left),) = face_recognition.face_locations(image)
    box = encodings[big].box
    assert box is not None
    assert box[0] == pytest.approx(right - left, rel=0.15)
    assert box[1] == pytest.approx(bottom - top, rel=0.15)


def test_several_faces_are_refused(faces: Path) -> None:
    e = encode_bytes((faces / "_multiple_faces" / "two_people.jpg").read_bytes())
    assert e.status == "multiple_faces" and e.encoding is None and e.box is None


def test_no_face_is_refused() -> None:
    gradient = np.tile(np.linspace(0, 255, 640, dtype=np.uint8), (480, 1))
    e = encode_face(np.stack([gradient, gradient // 2, 255 - gradient], axis=2))
    assert e.status == "no_face" and e.encoding is None


def test_not_an_image_is_unreadable() -> None:
    assert encode_bytes(b"this is not a jpeg").status == "unreadable"
    assert encode_face(np.zeros((10, 10), dtype=np.uint8)).status == "unreadable"
