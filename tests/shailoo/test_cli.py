"""The `shailoo` command as an operator runs it: real processes, real files, exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.provisioned import FACES, Provisioned


def shailoo(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SHAILOO_FACES": str(FACES)}
    return subprocess.run(
        [sys.executable, "-m", "shailoo", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_help_lists_the_subcommands(tmp_path: Path) -> None:
    out = shailoo("--help", cwd=tmp_path)
    assert out.returncode == 0
    for word in ("provision", "station", "demo"):
        assert word in out.stdout


def test_demo_provisions_and_verifies_every_bundle(tmp_path: Path) -> None:
    out = shailoo(
        "demo", "--out", "d", "--stations", "3", "--voters-per-station", "12", cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr + out.stdout
    assert "3 of 3 bundles verified" in out.stdout
    assert "14 rejected" in out.stdout and "Rejected rows (" in out.stdout
    assert (tmp_path / "d" / "provisioned" / "national-index" / "index.bin").exists()
    assert "polls closed: final identification report signed" in out.stdout
    assert "hash chain intact" in out.stdout
    assert (tmp_path / "d" / "station" / "event-log-nist-1500-101.json").exists()


def test_verify_bundle_exits_nonzero_and_names_the_tampered_file(tmp_path: Path) -> None:
    assert (
        shailoo(
            "demo", "--out", "d", "--stations", "2", "--voters-per-station", "5", cwd=tmp_path
        ).returncode
        == 0
    )
    bundles = tmp_path / "d" / "provisioned" / "bundles"
    victim = sorted(bundles.iterdir())[0]
    roll = victim / "roll.jsonl"
    roll.write_bytes(roll.read_bytes().replace(b'"home_vote":false', b'"home_vote":true ', 1))
    out = shailoo(
        "station",
        "verify-bundle",
        str(bundles),
        "--root",
        str(tmp_path / "d" / "cec" / "root-cert.pem"),
        cwd=tmp_path,
    )
    assert out.returncode == 1
    assert f"REFUSED {victim}" in out.stdout
    assert "roll.jsonl has been changed" in out.stdout
    assert "1 of 2 bundles verified" in out.stdout


def test_invalid_election_definition_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "election.json").write_text('{"id": "x"}')
    (tmp_path / "roll.csv").write_text("")
    out = shailoo(
        "provision",
        "roll",
        "--election",
        "election.json",
        "--roll",
        "roll.csv",
        "--out",
        "r",
        cwd=tmp_path,
    )
    assert out.returncode == 2
    assert "not a valid election definition" in out.stderr
    assert not (tmp_path / "r").exists()


def test_face_compare_contract_through_the_shailoo_command(tmp_path: Path) -> None:
    import json

    ok = shailoo("face", "compare", str(FACES / "obama" / "enroll.jpg"),
                 str(FACES / "obama" / "probe_small.jpg"), cwd=tmp_path)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    result = json.loads(ok.stdout)
    assert result["status"] == "match" and 0 <= result["distance"] < 0.55
    other = shailoo("face", "compare", str(FACES / "obama" / "enroll.jpg"),
                    str(FACES / "biden" / "probe1.jpg"), cwd=tmp_path)  # fmt: skip
    assert other.returncode == 0 and json.loads(other.stdout)["status"] == "no_match"
    crowd = shailoo("face", "compare", str(FACES / "obama" / "enroll.jpg"),
                    str(FACES / "_multiple_faces" / "two_people.jpg"), cwd=tmp_path)  # fmt: skip
    assert crowd.returncode == 2
    assert json.loads(crowd.stdout) == {"status": "multiple_faces", "distance": None}
    missing = shailoo("face", "compare", "nowhere.jpg", str(FACES / "biden" / "probe1.jpg"),
                      cwd=tmp_path)  # fmt: skip
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert json.loads(missing.stdout) == {"status": "no_face", "distance": None}


def test_ballot_render_then_read_gives_the_marked_option(
    provisioned: Provisioned, tmp_path: Path
) -> None:
    import json

    import cv2

    from election.ballot_layout import BallotLayouts

    bundle = provisioned.bundle(provisioned.definition.stations[0].number)
    layouts = BallotLayouts.model_validate_json((bundle / "ballots" / "layouts.json").read_bytes())
    style = next(s for s in layouts.styles if s.style_id.startswith("parliament"))
    out = shailoo("ballot", "render", "--bundle", str(bundle), "--style", style.style_id,
                  "--out", str(tmp_path / "sheet"), cwd=tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "sheet.pdf").read_bytes().startswith(b"%PDF")
    page = cv2.imread(str(tmp_path / "sheet.png"), cv2.IMREAD_GRAYSCALE)
    box = [b for b in style.contests[0].boxes if b.candidate_id is None][1]  # a party box
    r = box.rect
    cv2.rectangle(page, (r.x + 6, r.y + 6), (r.x + r.w - 7, r.y + r.h - 7), 20, -1)
    cv2.imwrite(str(tmp_path / "marked.png"), page)
    read = shailoo("ballot", "read", "--bundle", str(bundle), str(tmp_path / "marked.png"),
                   cwd=tmp_path)  # fmt: skip
    assert read.returncode == 0, read.stderr
    result = json.loads(read.stdout)
    assert result["status"] == "ok" and result["style_id"] == style.style_id
    contest = result["contests"][0]
    assert contest["status"] == "valid" and contest["option_id"] == box.option_id
    assert all("fill" in b for b in contest["boxes"])
    live = shailoo("ballot", "read", "--bundle", str(bundle), str(tmp_path / "marked.png"),
                   "--test-mode", cwd=tmp_path)  # fmt: skip
    assert json.loads(live.stdout)["status"] == "live_sheet_in_test"
