"""`shailoo face compare`: the contract outside checks rely on, one outcome at a time."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from biometrics.cli import main_compare
from biometrics.face import MATCH_THRESHOLD
from tests.support.provisioned import REPO


@pytest.fixture(scope="module")
def blank(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("compare") / "blank.png"
    cv2.imwrite(str(path), np.full((480, 640, 3), 200, np.uint8))
    return path


def _run(capsys: pytest.CaptureFixture[str], enroll: Path, probe: Path) -> tuple[int, dict, str]:
    code = main_compare([str(enroll), str(probe)])
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert len(lines) == 1, captured.out  # exactly one JSON object on stdout
    result = json.loads(lines[0])
    assert set(result) == {"status", "distance"}
    assert "Traceback" not in captured.err
    return code, result, captured.err


def test_same_person_is_a_match_with_exit_0(faces: Path, capsys: pytest.CaptureFixture) -> None:
    code, r, _ = _run(capsys, faces / "obama" / "enroll.jpg", faces / "obama" / "probe1.jpg")
    assert code == 0 and r["status"] == "match"
    assert isinstance(r["distance"], float) and r["distance"] <= MATCH_THRESHOLD


def test_another_person_is_no_match_with_exit_0(faces: Path, capsys: pytest.CaptureFixture) -> None:
    code, r, _ = _run(capsys, faces / "obama" / "enroll.jpg", faces / "biden" / "probe1.jpg")
    assert code == 0 and r["status"] == "no_match"
    assert isinstance(r["distance"], float) and r["distance"] > MATCH_THRESHOLD


@pytest.mark.parametrize("which", ["enroll", "probe"])
def test_no_face_in_either_image_exits_2(
    faces: Path, blank: Path, capsys: pytest.CaptureFixture, which: str
) -> None:
    photo = faces / "obama" / "enroll.jpg"
    enroll, probe = (blank, photo) if which == "enroll" else (photo, blank)
    code, r, err = _run(capsys, enroll, probe)
    assert code == 2 and r == {"status": "no_face", "distance": None}
    assert str(blank) in err


@pytest.mark.parametrize("which", ["enroll", "probe"])
def test_several_faces_in_either_image_exits_2(
    faces: Path, capsys: pytest.CaptureFixture, which: str
) -> None:
    photo, crowd = faces / "obama" / "enroll.jpg", faces / "_multiple_faces" / "two_people.jpg"
    enroll, probe = (crowd, photo) if which == "enroll" else (photo, crowd)
    code, r, _ = _run(capsys, enroll, probe)
    assert code == 2 and r == {"status": "multiple_faces", "distance": None}


def test_missing_or_undecodable_file_is_no_face_with_a_reason(
    faces: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    photo = faces / "obama" / "enroll.jpg"
    code, r, err = _run(capsys, tmp_path / "nowhere.jpg", photo)
    assert code == 2 and r == {"status": "no_face", "distance": None}
    assert "cannot read the enrolment image" in err
    (tmp_path / "text.jpg").write_text("not a picture")
    code, r, err = _run(capsys, photo, tmp_path / "text.jpg")
    assert code == 2 and r == {"status": "no_face", "distance": None}
    assert "not a readable picture" in err


def test_contract_holds_in_a_real_process(faces: Path, tmp_path: Path) -> None:
    # `python -m biometrics.cli` parses exactly what `shailoo face compare` parses
    def run(*paths: Path) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "biometrics.cli", "face", "compare", *map(str, paths)]
        return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)

    ok = run(faces / "obama" / "enroll.jpg", faces / "obama" / "probe_small.jpg")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["status"] == "match" and len(ok.stdout.splitlines()) == 1
    missing = run(tmp_path / "nowhere.jpg", faces / "obama" / "probe_small.jpg")
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert json.loads(missing.stdout) == {"status": "no_face", "distance": None}
