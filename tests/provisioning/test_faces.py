"""Face encoding on the real shared photos (real face_recognition, no mocks)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from provisioning.faces import enrol_photos


def test_each_distinct_photo_is_encoded_once_on_the_pool(faces: Path, tmp_path: Path) -> None:
    obama = faces / "obama" / "enroll.jpg"
    copy = tmp_path / "same_content_other_name.jpg"
    shutil.copy(obama, copy)
    rose = faces / "rose_leslie" / "enroll.jpg"
    result = enrol_photos([obama, copy, obama, rose], workers=2)
    assert set(result) == {
        hashlib.sha256(obama.read_bytes()).hexdigest(),
        hashlib.sha256(rose.read_bytes()).hexdigest(),
    }
    assert all(e.status == "ok" for e in result.values())


def test_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        enrol_photos([tmp_path / "nope.jpg"], workers=1)
