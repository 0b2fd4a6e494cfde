"""A roll seeded with a clerk's mistakes: every bad row refused for its reason, the rest kept."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

from provisioning.flaws import append_flaws
from provisioning.roll import validate_roll
from provisioning.sample import generate_sample


def test_each_kind_of_bad_row_is_refused_and_every_good_row_is_kept(
    faces: Path, tmp_path: Path
) -> None:
    info = generate_sample(
        tmp_path / "s", stations=3, voters_per_station=20, seed=3, faces_dir=faces
    )
    rejects, no_bio = append_flaws(info.roll_path, info.photos_dir, faces, info.definition)
    summary = validate_roll(info.roll_path, info.definition, info.photos_dir, tmp_path / "r")
    assert Counter(summary.rejected) == Counter(rejects)
    rows = list(csv.DictReader((tmp_path / "r" / "rejected.csv").open(encoding="utf-8")))
    assert sorted(r["reason"] for r in rows) == sorted(rejects)
    assert all(int(r["line"]) > info.voters_written + 1 for r in rows)  # only the added rows
    assert summary.accepted == info.voters_written + len(no_bio)
    for reason in no_bio:
        assert summary.no_biometrics[reason] == 1
