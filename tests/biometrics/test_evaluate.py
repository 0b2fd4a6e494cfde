"""Face evaluation on the real shared set, and on small sets built to exercise each count."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from biometrics.cli import main
from biometrics.evaluate import Evaluation, EvaluationError, discover, evaluate, format_report
from biometrics.face import MATCH_THRESHOLD


@pytest.fixture(scope="module")
def shared(faces: Path) -> Evaluation:
    return evaluate(faces)


def test_every_probe_is_compared_with_its_own_and_every_other_template(
    faces: Path, shared: Evaluation
) -> None:
    people = discover(faces)
    probes = sum(len(p.probes) for p in people)
    assert "_multiple_faces" not in {p.name for p in people}
    assert shared.enrolled == len(people) and not shared.enrol_failures
    assert len(shared.genuine) == probes
    assert len(shared.impostor) == probes * (len(people) - 1)


def test_shared_set_has_no_false_match_and_no_false_non_match_at_the_threshold(
    shared: Evaluation,
) -> None:
    assert shared.threshold == MATCH_THRESHOLD
    assert not shared.acquire_failures and shared.fta == 0
    assert shared.fmr == 0 and shared.fnmr == 0
    assert shared.genuine[-1] < MATCH_THRESHOLD < shared.impostor[0]
    assert shared.margin == pytest.approx(shared.impostor[0] - shared.genuine[-1])
    assert shared.margin is not None and shared.margin > 0


def test_rates_follow_the_threshold(shared: Evaluation) -> None:
    lax = dataclasses.replace(shared, threshold=1.9)
    assert lax.fmr == 1 and lax.fnmr == 0
    strict = dataclasses.replace(shared, threshold=shared.genuine[-1] - 1e-6)
    assert strict.fmr == 0 and strict.false_non_matches == 1
    assert strict.fnmr == pytest.approx(1 / len(shared.genuine))


def test_report_shows_distributions_histogram_and_rates(shared: Evaluation) -> None:
    text = format_report(shared)
    for needle in ("genuine", "impostor", "threshold 0.550", "false match rate", "margin", "#"):
        assert needle in text
    d = shared.to_dict()
    h = d["histogram"]
    assert sum(h["genuine"]) == len(shared.genuine) and sum(h["impostor"]) == len(shared.impostor)
    assert d["genuine"]["min"] <= d["genuine"]["p50"] <= d["genuine"]["max"]
    assert d["fmr_upper95"] > 0  # 40 comparisons cannot prove a rate of zero


@pytest.fixture(scope="module")
def small_set(faces: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two people, a probe with no face, one with two faces, plus folders to be ignored."""
    root = tmp_path_factory.mktemp("faces")
    for person in ("obama", "biden"):
        (root / person).mkdir()
        shutil.copy(faces / person / "enroll.jpg", root / person / "enroll.jpg")
        shutil.copy(faces / person / "probe1.jpg", root / person / "probe1.jpg")
    cv2.imwrite(str(root / "obama" / "probe_blank.png"), np.full((480, 640, 3), 90, np.uint8))
    shutil.copy(faces / "_multiple_faces" / "two_people.jpg", root / "biden" / "probe_two.jpg")
    (root / "biden" / "probe_broken.jpg").write_bytes(b"not a jpeg")
    (root / "_ignored").mkdir()
    shutil.copy(faces / "obama" / "probe1.jpg", root / "_ignored" / "enroll.jpg")
    (root / "no_enrolment").mkdir()
    shutil.copy(faces / "obama" / "probe1.jpg", root / "no_enrolment" / "probe1.jpg")
    return root


def test_probes_without_a_single_face_are_counted_apart(small_set: Path) -> None:
    ev = evaluate(small_set)
    assert ev.people == 2 and ev.probes == 5
    assert ev.acquire_failures == {
        "obama/probe_blank.png": "no_face",
        "biden/probe_broken.jpg": "unreadable",
        "biden/probe_two.jpg": "multiple_faces",
    }
    assert len(ev.genuine) == 2 and len(ev.impostor) == 2
    assert ev.fta == pytest.approx(3 / 5)
    assert ev.fnmr == 0 and ev.fmr == 0


def test_enrolment_photo_without_a_face_is_a_failure_to_enrol(
    small_set: Path, tmp_path: Path
) -> None:
    shutil.copytree(small_set, tmp_path / "set")
    shutil.copy(small_set / "obama" / "probe_blank.png", tmp_path / "set" / "biden" / "enroll.jpg")
    ev = evaluate(tmp_path / "set")
    assert ev.enrol_failures == {"biden": "no_face"} and ev.enrolled == 1
    # biden's probe has no template of its own, but is still an impostor for obama's
    assert [(c.probe, c.template, c.genuine) for c in ev.comparisons] == [
        ("biden/probe1.jpg", "obama", False),
        ("obama/probe1.jpg", "obama", True),
    ]


def test_face_eval_command_prints_one_json_object(
    small_set: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["station", "face-eval", str(small_set), "--json", "--threshold", "0.5"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["threshold"] == 0.5
    assert out["counts"]["failure_to_acquire"] == 3
    assert out["fmr"] == 0 and out["fnmr"] == 0
    assert set(out["genuine"]) == {"n", "min", "p50", "max"}


def test_face_eval_command_prints_the_report(
    small_set: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["station", "face-eval", str(small_set)]) == 0
    out = capsys.readouterr().out
    assert "failure to acquire: obama/probe_blank.png (no_face)" in out


def test_face_eval_of_a_folder_that_is_not_a_face_set_fails_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["station", "face-eval", str(tmp_path / "missing")]) == 2
    assert "not a directory" in capsys.readouterr().err
    assert main(["station", "face-eval", str(tmp_path)]) == 2
    assert "no person folder" in capsys.readouterr().err
    with pytest.raises(EvaluationError):
        discover(tmp_path)
