"""Roll validation on real CSV files: every row accepted or rejected with its line and reason."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from election.definition import ElectionDefinition, Gender
from election.pin import make_pin
from provisioning.roll import HEADER, REJECT_REASONS, RollFormatError, RollSummary, validate_roll

from .conftest import ELECTION_DAY

HEADER_LINE = ",".join(HEADER)


def pin_for(serial: int, sex: Gender = Gender.FEMALE, birth: dt.date | None = None) -> str:
    return make_pin(sex, birth or dt.date(1980, 5, 17), serial)


def row(serial: int, **over: str) -> str:
    """A valid row; keyword arguments replace columns (raw strings)."""
    sex = Gender(over.pop("_sex", "F"))
    birth = dt.date.fromisoformat(over.pop("_birth", "1980-05-17"))
    values = {
        "pin": make_pin(sex, birth, serial),
        "last_name": "Асанова" if sex is Gender.FEMALE else "Асанов",
        "first_name": "Айгүл" if sex is Gender.FEMALE else "Бакыт",
        "patronymic": "Бакытовна" if sex is Gender.FEMALE else "Асанович",
        "birth_date": birth.isoformat(),
        "gender": sex.value,
        "station": "1001",
        "document_no": f"ID{serial:07d}",
        "photo": "",
        "home_vote": "",
    }
    values.update(over)
    return ",".join(values[c] for c in HEADER)


def write_roll(path: Path, rows: list[str | bytes], header: str = HEADER_LINE) -> Path:
    data = header.encode() + b"\n"
    for r in rows:
        data += (r if isinstance(r, bytes) else r.encode("utf-8")) + b"\n"
    path.write_bytes(data)
    return path


def run(
    tmp_path: Path,
    definition: ElectionDefinition,
    rows: list[str | bytes],
    photos: Path | None = None,
    workers: int = 1,
) -> tuple[RollSummary, list[dict], list[dict]]:
    roll = write_roll(tmp_path / "roll.csv", rows)
    out = tmp_path / "out"
    summary = validate_roll(roll, definition, photos, out, workers=workers)
    voters = [json.loads(x) for x in (out / "roll.jsonl").read_text("utf-8").splitlines()]
    with (out / "rejected.csv").open(encoding="utf-8", newline="") as fh:
        rejected = list(csv.DictReader(fh))
    return summary, voters, rejected


ADULT_LIMIT = ELECTION_DAY.replace(year=ELECTION_DAY.year - 18)

# reason -> a bad row (as the line after two good rows)
BAD_ROWS: dict[str, str | bytes] = {
    "bad_encoding": row(900).replace("Асанова", "Asan").encode() + b"\xff\xfe",
    "wrong_column_count": row(901) + ",extra",
    "pin_format": row(902, pin="2150119851234"),
    "pin_sex_digit": row(903, pin="31705198000903"),
    "pin_birth_date": row(904, pin="13102198000904"),
    "missing_name": row(906, last_name=""),
    "bad_birth_date": row(907, birth_date="17.05.1980"),
    "birth_date_mismatch": row(908, birth_date="1980-05-18"),
    "bad_gender": row(909, gender="X"),
    "gender_mismatch": row(910, gender="M"),
    "under_18": row(911, _birth=(ADULT_LIMIT + dt.timedelta(days=1)).isoformat()),
    "unknown_station": row(912, station="9999"),
    "bad_document_no": row(913, document_no="1234567"),
    "bad_home_vote": row(914, home_vote="yes"),
}


def test_every_reason_has_a_test() -> None:
    assert set(BAD_ROWS) | {"duplicate_pin"} == set(REJECT_REASONS)


@pytest.mark.parametrize("reason", sorted(BAD_ROWS))
def test_each_bad_row_is_rejected_with_its_line_and_reason(
    reason: str, tmp_path: Path, definition: ElectionDefinition
) -> None:
    summary, voters, rejected = run(
        tmp_path, definition, [row(1), row(2), BAD_ROWS[reason], row(3)]
    )
    assert [(r["line"], r["reason"]) for r in rejected] == [("4", reason)]
    assert rejected[0]["message"]
    assert summary.rows_read == 4 and summary.accepted == 3
    assert summary.rejected == {reason: 1}
    assert {v["pin"] for v in voters} == {pin_for(1), pin_for(2), pin_for(3)}


def test_all_bad_rows_in_one_file(tmp_path: Path, definition: ElectionDefinition) -> None:
    rows: list[str | bytes] = [row(1)]
    expected = []
    for reason, bad in BAD_ROWS.items():
        rows.append(bad)
        expected.append((str(len(rows) + 1), reason))
        rows.append(row(len(rows) + 100))
    summary, voters, rejected = run(tmp_path, definition, rows)
    assert [(r["line"], r["reason"]) for r in rejected] == expected
    assert summary.accepted == len(voters) == len(rows) - len(BAD_ROWS)
    assert summary.accepted + summary.rejected_total == summary.rows_read == len(rows)
    assert "rejected.csv" in summary.describe()
    assert json.loads((tmp_path / "out" / "summary.json").read_text()) == summary.to_json_obj()


def test_under_18_boundary(tmp_path: Path, definition: ElectionDefinition) -> None:
    on_day = ADULT_LIMIT.isoformat()  # 18th birthday on election day: may vote
    summary, voters, _ = run(tmp_path, definition, [row(1, _birth=on_day)])
    assert summary.accepted == 1 and voters[0]["birth_date"] == on_day


def test_born_on_29_february_comes_of_age_on_28_february(
    tmp_path: Path, definition: ElectionDefinition
) -> None:
    feb28 = definition.model_copy(update={"date": dt.date(2026, 2, 28)})
    rows: list[str | bytes] = [
        row(1, _birth="2008-02-29"),
        row(2, _birth="2008-03-01"),
        row(3, pin="10101999900003", birth_date="9999-01-01"),
    ]
    summary, voters, rejected = run(tmp_path, feb28, rows)
    assert [v["pin"] for v in voters] == [pin_for(1, birth=dt.date(2008, 2, 29))]
    assert [(r["line"], r["reason"]) for r in rejected] == [("3", "under_18"), ("4", "under_18")]


def test_duplicate_pins_reject_every_copy(tmp_path: Path, definition: ElectionDefinition) -> None:
    dup = row(7)
    rows: list[str | bytes] = [
        row(1),
        dup,
        row(2),
        dup.replace("1001", "2001"),
        row(7, document_no="bad"),  # same PIN, and wrong in another way too
        row(3),
    ]
    summary, voters, rejected = run(tmp_path, definition, rows)
    assert [(r["line"], r["reason"]) for r in rejected] == [
        ("3", "duplicate_pin"),
        ("5", "duplicate_pin"),
        ("6", "duplicate_pin"),
    ]
    assert pin_for(7) not in {v["pin"] for v in voters}
    assert summary.accepted == 3


def test_invalid_utf8_rejects_only_that_line(
    tmp_path: Path, definition: ElectionDefinition
) -> None:
    latin1 = row(2).replace("Асанова", "Müller").encode("utf-8").replace(b"\xc3\xbc", b"\xfc")
    summary, voters, rejected = run(tmp_path, definition, [row(1), latin1, row(3), row(4)])
    assert [(r["line"], r["reason"]) for r in rejected] == [("3", "bad_encoding")]
    assert rejected[0]["pin"] == pin_for(2)
    assert "\\xfc" in rejected[0]["raw"]
    assert summary.accepted == 3


@pytest.mark.parametrize(
    "header",
    [
        "pin,last_name,first_name,patronymic,birth_date,gender,station,document_no,photo",
        "pin,first_name,last_name,patronymic,birth_date,gender,station,document_no,photo,home_vote",
        "pin;last_name;first_name;patronymic;birth_date;gender;station;document_no;photo;home_vote",
        row(1),  # no header at all
    ],
)
def test_bad_header_refuses_the_file_and_writes_nothing(
    header: str, tmp_path: Path, definition: ElectionDefinition
) -> None:
    roll = write_roll(tmp_path / "roll.csv", [row(1)], header=header)
    out = tmp_path / "out"
    with pytest.raises(RollFormatError, match="header"):
        validate_roll(roll, definition, None, out)
    assert not out.exists()


def test_empty_file_is_refused(tmp_path: Path, definition: ElectionDefinition) -> None:
    (tmp_path / "roll.csv").write_bytes(b"")
    with pytest.raises(RollFormatError, match="empty"):
        validate_roll(tmp_path / "roll.csv", definition, None, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_roll_is_sorted_and_complete(tmp_path: Path, definition: ElectionDefinition) -> None:
    rows: list[str | bytes] = [
        row(5, station="2001", home_vote="1"),
        row(4, station="1002", _sex="M"),
        row(3, station="1001", home_vote="0"),
        row(2, station="2001"),
        row(1, station="1002", document_no="an1234567"),
        "",  # a blank line is counted, not a row
        '"' + pin_for(6) + '","Асанова, кызы",Айгүл,,1980-05-17,F,1001,ID0000006,,',
    ]
    summary, voters, rejected = run(tmp_path, definition, rows)
    assert rejected == [] and summary.blank_lines == 1 and summary.rows_read == 6
    keys = [(v["station_number"], v["pin"]) for v in voters]
    assert keys == sorted(keys) and len(keys) == 6
    by_pin = {v["pin"]: v for v in voters}
    assert by_pin[pin_for(5)]["station"] == "uik-2001" and by_pin[pin_for(5)]["home_vote"] is True
    assert by_pin[pin_for(3)]["home_vote"] is False
    assert by_pin[pin_for(1)]["document_no"] == "AN1234567"
    assert by_pin[pin_for(4, Gender.MALE)]["gender"] == "M"
    assert by_pin[pin_for(6)]["last_name"] == "Асанова, кызы"
    assert by_pin[pin_for(6)]["patronymic"] == ""
    v = by_pin[pin_for(3)]
    assert set(v) == {
        "pin",
        "last_name",
        "first_name",
        "patronymic",
        "birth_date",
        "gender",
        "station",
        "station_number",
        "document_no",
        "home_vote",
        "biometrics",
        "no_biometrics_reason",
        "template",
    }
    assert (v["biometrics"], v["no_biometrics_reason"], v["template"]) == (
        "none",
        "photo_missing",
        None,
    )
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "rejected.csv",
        "roll.jsonl",
        "summary.json",
        "templates.json",
        "templates.npy",
    ]


@pytest.fixture
def photos(tmp_path: Path, faces: Path) -> Path:
    d = tmp_path / "photos"
    d.mkdir()
    shutil.copy(faces / "obama" / "enroll.jpg", d / "obama.jpg")
    shutil.copy(faces / "rose_leslie" / "enroll.jpg", d / "rose.jpg")
    shutil.copy(faces / "_multiple_faces" / "two_people.jpg", d / "two.jpg")
    Image.new("RGB", (400, 300), (120, 160, 200)).save(d / "blank.png")
    (d / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    return d


def test_photo_problems_keep_the_voter_without_biometrics(
    tmp_path: Path, definition: ElectionDefinition, photos: Path
) -> None:
    rows: list[str | bytes] = [
        row(1, photo="obama.jpg"),
        row(2, photo="blank.png"),
        row(3, photo="two.jpg"),
        row(4, photo="missing.jpg"),
        row(5, photo=""),
        row(6, photo="broken.jpg"),
        row(7, photo="../photos/obama.jpg"),
        row(8, photo="rose.jpg"),
    ]
    summary, voters, rejected = run(tmp_path, definition, rows, photos)
    assert rejected == [] and summary.accepted == 8
    got = {v["pin"]: (v["biometrics"], v["no_biometrics_reason"]) for v in voters}
    assert got == {
        pin_for(1): ("enrolled", None),
        pin_for(2): ("none", "no_face"),
        pin_for(3): ("none", "multiple_faces"),
        pin_for(4): ("none", "photo_not_found"),
        pin_for(5): ("none", "photo_missing"),
        pin_for(6): ("none", "photo_unreadable"),
        pin_for(7): ("none", "photo_not_found"),
        pin_for(8): ("enrolled", None),
    }
    assert summary.enrolled == 2
    assert summary.no_biometrics == {
        "no_face": 1,
        "multiple_faces": 1,
        "photo_not_found": 2,
        "photo_missing": 1,
        "photo_unreadable": 1,
    }
    out = tmp_path / "out"
    meta = json.loads((out / "templates.json").read_text())
    matrix = np.load(out / "templates.npy")
    assert matrix.shape == (2, 128) and matrix.dtype == np.float32
    obama_sha = hashlib.sha256((photos / "obama.jpg").read_bytes()).hexdigest()
    assert {v["template"] for v in voters if v["template"]} == set(meta["hashes"])
    assert obama_sha in meta["hashes"] and len(meta["face_box"]) == 2
    assert next(v for v in voters if v["pin"] == pin_for(1))["template"] == obama_sha


def test_same_photo_for_50_voters_is_encoded_once(
    tmp_path: Path, definition: ElectionDefinition, photos: Path
) -> None:
    shutil.copy(photos / "obama.jpg", photos / "obama_again.jpg")  # same content, other name
    rows: list[str | bytes] = [
        row(i, photo="obama.jpg" if i % 2 else "obama_again.jpg") for i in range(50)
    ]
    summary, voters, _ = run(tmp_path, definition, rows, photos, workers=2)
    assert summary.distinct_photos_encoded == 1
    assert summary.enrolled == 50 and len({v["template"] for v in voters}) == 1
    assert np.load(tmp_path / "out" / "templates.npy").shape == (1, 128)


def test_no_photos_dir_keeps_voters(tmp_path: Path, definition: ElectionDefinition) -> None:
    summary, voters, _ = run(tmp_path, definition, [row(1, photo="a.jpg")], None)
    assert voters[0]["no_biometrics_reason"] == "photo_not_found" and summary.accepted == 1


def test_rerun_replaces_outputs(tmp_path: Path, definition: ElectionDefinition) -> None:
    run(tmp_path, definition, [row(1), row(2)])
    summary, voters, _ = run(tmp_path, definition, [row(3)])
    assert [v["pin"] for v in voters] == [pin_for(3)] and summary.accepted == 1
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]
