"""A clerk's mistakes: rows of every kind the roll validator must refuse, for demos and drills.

`append_flaws` adds to a sample roll one row for each reject reason, a pair of
rows that share a PIN, and voters whose photos are unusable (no face, two
faces, missing file), so that a demo or a training session shows every path
of `provision roll` on real files.  It returns what each added row should give.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from election.definition import ElectionDefinition, Gender
from election.pin import make_pin

# What validate_roll must say about each added row (reason code per kind of flaw).
EXPECTED_REJECTS = (
    "pin_format",
    "pin_sex_digit",
    "pin_birth_date",
    "duplicate_pin",
    "duplicate_pin",
    "birth_date_mismatch",
    "gender_mismatch",
    "under_18",
    "unknown_station",
    "missing_name",
    "bad_document_no",
    "bad_home_vote",
    "bad_encoding",
    "wrong_column_count",
)
EXPECTED_NO_BIOMETRICS = ("no_face", "multiple_faces", "photo_not_found")


def append_flaws(
    roll_csv: Path, photos_dir: Path, faces_dir: Path, definition: ElectionDefinition
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Append the flawed rows; returns the expected reject reasons and no-biometrics reasons."""
    station = definition.stations[0].number
    day = definition.date
    adult = dt.date(day.year - 40, 3, 14)
    child = dt.date(day.year - 17, day.month, min(day.day, 28))
    serial = iter(range(99_000, 99_999))

    def pin(sex: Gender = Gender.MALE, born: dt.date = adult) -> str:
        return make_pin(sex, born, next(serial))

    def row(p: str, **kw: str) -> list[str]:
        base = {
            "last_name": "Сыноов", "first_name": "Катачы", "patronymic": "",
            "birth_date": adult.isoformat(), "gender": "M", "station": str(station),
            "document_no": f"ID{next(serial):07d}", "photo": "", "home_vote": "0",
        }  # fmt: skip
        base.update(kw)
        return [p, *base.values()]

    twin = pin()
    female = pin(Gender.FEMALE)
    rows = [
        row("12345"),
        row("3" + pin()[1:]),
        row(pin()[:1] + "31022000" + "00001"),
        row(twin),
        row(twin, first_name="Эгиз"),
        row(pin(), birth_date=dt.date(day.year - 41, 1, 1).isoformat()),
        row(female, gender="M"),
        row(pin(born=child), birth_date=child.isoformat()),
        row(pin(), station="99999999"),
        row(pin(), last_name=""),
        row(pin(), document_no="12-AB"),
        row(pin(), home_vote="maybe"),
    ]
    blank = photos_dir / "flaw-blank-wall.png"
    Image.fromarray(np.full((480, 640, 3), 190, dtype=np.uint8)).save(blank)
    crowd = photos_dir / "flaw-two-people.jpg"
    shutil.copy(faces_dir / "_multiple_faces" / "two_people.jpg", crowd)
    rows += [
        row(pin(), photo=blank.name),
        row(pin(), photo=crowd.name),
        row(pin(), photo="flaw-lost-photo.jpg"),
    ]
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    with roll_csv.open("ab") as f:
        f.write(buf.getvalue().encode("utf-8"))
        f.write(pin().encode() + b",\xff\xfe\xfd,broken,bytes\n")  # not UTF-8
        f.write(b"21403198500001,too,few,columns\n")
    return EXPECTED_REJECTS, EXPECTED_NO_BIOMETRICS
