"""The sample-election generator: reproducible, internally consistent, Kyrgyz-shaped.

Real files under tmp_path and the real face test set (../shared/data/faces from
the repository root, or $SHAILOO_FACES).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from election.definition import (
    ContestKind,
    ElectionDefinition,
    OptionKind,
    PartyListRules,
    PluralityRules,
)
from election.pin import parse_pin
from provisioning import sample_data as data
from provisioning.sample import ROLL_HEADER, SampleInfo, build_definition, generate_sample

REPO = Path(__file__).resolve().parents[2]
ELECTION_DAY = dt.date(2026, 11, 29)


@pytest.fixture(scope="module")
def faces_dir(faces: Path) -> Path:
    return faces


def _make(tmp: Path, faces: Path, **kw: object) -> SampleInfo:
    args: dict = {"stations": 60, "voters_per_station": 40, "seed": 11} | kw
    return generate_sample(tmp, faces_dir=faces, **args)


@pytest.fixture(scope="module")
def parl(tmp_path_factory: pytest.TempPathFactory, faces_dir: Path) -> SampleInfo:
    return _make(tmp_path_factory.mktemp("parl") / "out", faces_dir)


@pytest.fixture(scope="module")
def pres(tmp_path_factory: pytest.TempPathFactory, faces_dir: Path) -> SampleInfo:
    return _make(
        tmp_path_factory.mktemp("pres") / "out",
        faces_dir,
        stations=25,
        voters_per_station=30,
        seed=3,
        kind="presidential",
    )


def _rows(info: SampleInfo) -> list[dict[str, str]]:
    with open(info.roll_path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def _files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# --- reproducibility ----------------------------------------------------------------


def test_same_seed_gives_identical_bytes_in_every_file(
    parl: SampleInfo, tmp_path: Path, faces_dir: Path
) -> None:
    again = _make(tmp_path / "again", faces_dir)
    first, second = _files(parl.roll_path.parent), _files(again.roll_path.parent)
    assert sorted(first) == sorted(second)
    assert {"election.json", "roll.csv", "faces.json", "truth.json"} <= set(first)
    for name in first:
        assert first[name] == second[name], name


def test_different_seed_gives_a_different_roll_and_definition(
    parl: SampleInfo, tmp_path: Path, faces_dir: Path
) -> None:
    other = _make(tmp_path / "other", faces_dir, seed=12)
    assert other.roll_path.read_bytes() != parl.roll_path.read_bytes()
    assert other.definition.election_hash != parl.definition.election_hash


def test_regenerating_over_an_earlier_sample_is_allowed_but_not_over_other_data(
    tmp_path: Path, faces_dir: Path
) -> None:
    out = tmp_path / "s"
    first = _make(out, faces_dir, stations=3, voters_per_station=5)
    (out / "photos" / "stale.jpg").write_bytes(b"x")
    second = _make(out, faces_dir, stations=3, voters_per_station=5)
    assert not (out / "photos" / "stale.jpg").exists()
    assert first.roll_path.read_bytes() == second.roll_path.read_bytes()

    other = tmp_path / "precious"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError):
        _make(other, faces_dir, stations=3, voters_per_station=5)
    assert (other / "notes.txt").read_text() == "keep me"


# --- the definition -----------------------------------------------------------------


def test_definition_file_loads_back_with_the_same_hash(parl: SampleInfo) -> None:
    out = parl.roll_path.parent
    loaded = ElectionDefinition.from_json((out / "election.json").read_bytes())
    assert loaded.election_hash == parl.definition.election_hash
    truth = json.loads((out / "truth.json").read_text(encoding="utf-8"))
    assert truth["election_hash"] == loaded.election_hash
    assert truth["seed"] == 11 and truth["kind"] == "parliament"
    assert truth["voters"] == parl.voters_written == 60 * 40
    assert loaded.id == "kg-2026-parliament"
    assert loaded.timezone == "Asia/Bishkek"
    assert (loaded.polls_open, loaded.polls_close) == ("08:00", "20:00")


def test_build_definition_matches_the_written_one(parl: SampleInfo) -> None:
    again = build_definition(stations=60, voters_per_station=40, seed=11)
    assert again.election_hash == parl.definition.election_hash


def test_parliament_has_one_party_list_and_one_smd_per_home_district(parl: SampleInfo) -> None:
    d = parl.definition
    lists = [c for c in d.contests if c.kind is ContestKind.PARTY_LIST]
    assert [c.id for c in lists] == ["parliament-list"]
    rules = lists[0].rules
    assert isinstance(rules, PartyListRules)
    assert (rules.seats, rules.threshold_percent, rules.gender_quota_percent) == (54, 5, 30)
    assert rules.open_list and rules.method.value == "hare"
    assert lists[0].district_id is None and lists[0].against_all is not None

    home = [x.id for x in d.districts if x.id != "abroad"]
    assert len(home) == 36  # 59 stations at home: the full 36 districts
    smds = [c for c in d.contests if c.kind is ContestKind.SINGLE_MEMBER]
    assert sorted(c.district_id or "" for c in smds) == sorted(home)
    assert [c.id for c in smds] == [f"smd-{n:02d}" for n in range(1, 37)]
    for c in smds:
        assert isinstance(c.rules, PluralityRules)
        candidates = [o for o in c.options if o.kind is OptionKind.CANDIDATE]
        assert 3 <= len(candidates) <= 8
        assert all(o.gender is not None for o in candidates)
        assert c.against_all is not None

    abroad = [s for s in d.stations if s.abroad]
    assert abroad and all(d.station_district(s.id).id == "abroad" for s in abroad)
    assert [c.id for c in d.contests_for_station(abroad[0].id)] == ["parliament-list"]


def test_party_lists_are_ordered_and_meet_the_gender_quota(parl: SampleInfo) -> None:
    contest = parl.definition.contest("parliament-list")
    parties = [o for o in contest.options if o.kind is OptionKind.PARTY]
    assert 13 <= len(parties) <= 16
    real_names = {"Ата-Журт", "Ишеним", "Ынтымак", "Ата Мекен", "Мекенчил", "Биримдик"}
    assert not {p.name.ky for p in parties} & real_names
    for p in parties:
        assert 10 <= len(p.candidates) <= 20
        assert [c.position for c in p.candidates] == list(range(1, len(p.candidates) + 1))
        genders = Counter(c.gender.value for c in p.candidates)
        assert min(genders["F"], genders["M"]) * 10 >= 3 * len(p.candidates), p.id
        for c in p.candidates:
            last, _first, patronymic = c.name.ky.split(" ", 2)
            if c.gender.value == "F":
                assert patronymic.endswith(("вна", "кызы")), c.name.ky
            else:
                assert patronymic.endswith(("вич", "уулу")), c.name.ky


def test_presidential_has_president_and_referendum_and_no_district_contests(
    pres: SampleInfo,
) -> None:
    d = pres.definition
    assert d.id == "kg-2026-presidential"
    assert [c.id for c in d.contests] == ["president", "referendum"]
    assert all(c.district_id is None for c in d.contests)
    president = d.contest("president")
    assert president.kind is ContestKind.PRESIDENT
    candidates = [o for o in president.options if o.kind is OptionKind.CANDIDATE]
    assert 6 <= len(candidates) <= 17 and president.against_all is not None
    referendum = d.contest("referendum")
    assert {o.kind for o in referendum.options} == {OptionKind.YES, OptionKind.NO}
    assert referendum.name.ky.endswith("?") and referendum.name.en


def test_geography_is_consistent_at_every_size() -> None:
    regions = {r.id: r for r in (*data.REGIONS, data.ABROAD)}
    for n in (1, 2, 5, 9, 19, 20, 21, 36, 37, 40, 100, 2500):
        d = build_definition(stations=n, voters_per_station=0, seed=n)
        assert len(d.stations) == n
        numbers = [s.number for s in d.stations]
        assert len(set(numbers)) == n
        home_districts = [x for x in d.districts if x.id != "abroad"]
        home_stations = sum(not s.abroad for s in d.stations)
        assert len(home_districts) == min(36, home_stations) or (
            home_stations < 36 and len(home_districts) <= home_stations
        )
        if home_stations >= 36:
            assert len(home_districts) == 36
            assert [c.id for c in d.contests[1:]] == [f"smd-{k:02d}" for k in range(1, 37)]
        # Every region used has a district, every district a commission, every commission
        # a station; abroad stations only in the abroad district.
        used_regions = {x.region_id for x in d.districts}
        assert used_regions == {r.id for r in d.regions}
        by_district = Counter(c.district_id for c in d.commissions)
        assert set(by_district) == {x.id for x in d.districts}
        assert all(1 <= k <= 3 for k in by_district.values())
        assert {s.commission_id for s in d.stations} == {c.id for c in d.commissions}
        for s in d.stations:
            region = d.region(d.station_district(s.id).region_id)
            assert s.abroad == (region.id == "abroad")
            if not s.abroad:
                lat_lo, lat_hi, lon_lo, lon_hi = regions[region.id].bbox
                assert lat_lo <= float(s.lat) <= lat_hi and lon_lo <= float(s.lon) <= lon_hi
                assert str(s.number) in s.name.ky and str(s.number) in s.name.ru
    big = build_definition(stations=2500, voters_per_station=0, seed=5)
    assert sum(s.abroad for s in big.stations) == 50  # 2% abroad
    by_region = Counter(big.station_district(s.id).region_id for s in big.stations)
    assert by_region["bishkek"] > by_region["naryn"] and by_region["osh"] > by_region["talas"]
    assert min(s.number for s in big.stations) == 1001  # Bishkek first


# --- the roll -----------------------------------------------------------------------


def test_roll_header_and_rows_per_station_match_registered_voters(parl: SampleInfo) -> None:
    with open(parl.roll_path, encoding="utf-8") as f:
        assert f.readline().rstrip("\n") == ROLL_HEADER
    per_station = Counter(int(r["station"]) for r in _rows(parl))
    assert per_station == {s.number: s.registered_voters for s in parl.definition.stations}


def test_pins_documents_and_ages_are_valid_and_consistent(parl: SampleInfo) -> None:
    rows = _rows(parl)
    pins = [r["pin"] for r in rows]
    docs = [r["document_no"] for r in rows]
    assert len(set(pins)) == len(pins) and len(set(docs)) == len(docs)
    for r in rows:
        assert re.fullmatch(r"[12]\d{13}", r["pin"])
        assert re.fullmatch(r"ID\d{7}", r["document_no"])
        info = parse_pin(r["pin"])
        birth = dt.date.fromisoformat(r["birth_date"])
        assert info.birth_date == birth
        assert info.sex.value == r["gender"]
        age = (
            ELECTION_DAY.year
            - birth.year
            - (
                (ELECTION_DAY.month, ELECTION_DAY.day)
                < (
                    birth.month,
                    birth.day,
                )
            )
        )
        assert 18 <= age <= 90, r
        assert r["home_vote"] in ("0", "1")


def test_names_are_cyrillic_and_gendered(parl: SampleInfo) -> None:
    rows = _rows(parl)
    male_surnames = {s for g in data.GROUPS for s in g[2] if data.female_surname(s) != s}
    cyrillic = re.compile(r"[А-Яа-яЁёҢңӨөҮү -]+")
    for r in rows:
        for col in ("last_name", "first_name", "patronymic"):
            assert cyrillic.fullmatch(r[col]), r
        if r["gender"] == "F":
            assert r["patronymic"].endswith(("вна", " кызы")), r
            assert r["last_name"] not in male_surnames, r
        else:
            assert r["patronymic"].endswith(("вич", " уулу")), r
    women = sum(r["gender"] == "F" for r in rows) / len(rows)
    assert 0.47 <= women <= 0.58
    assert len({r["first_name"] for r in rows}) > 60


def test_photos_are_real_copied_once_and_probes_are_mapped(
    parl: SampleInfo, faces_dir: Path
) -> None:
    out = parl.roll_path.parent
    people = sorted(
        p.name for p in faces_dir.iterdir() if p.is_dir() and not p.name.startswith("_")
    )
    photos = sorted(p.name for p in parl.photos_dir.iterdir())
    assert len(photos) == len(people)  # one file per real person, not per voter
    mapping = json.loads((out / "faces.json").read_text(encoding="utf-8"))
    assert sorted(mapping["photos"]) == photos
    assert sorted(mapping["photos"].values()) == people
    for photo, person in mapping["photos"].items():
        enroll = next((faces_dir / person).glob("enroll.*"))
        assert (parl.photos_dir / photo).read_bytes() == enroll.read_bytes()
        for probe in mapping["probes"][person]:
            assert (out / probe).read_bytes() == (
                faces_dir / person / Path(probe).name
            ).read_bytes()
    assert "_multiple_faces" not in json.dumps(mapping)
    used = Counter(r["photo"] for r in _rows(parl))
    assert set(used) - {""} <= set(photos)
    assert used[""] < 0.05 * parl.voters_written


def test_progress_reports_every_station_and_ends_at_the_total(
    tmp_path: Path, faces_dir: Path
) -> None:
    calls: list[tuple[int, int]] = []
    info = _make(
        tmp_path / "p",
        faces_dir,
        stations=4,
        voters_per_station=3,
        progress=lambda a, b: calls.append((a, b)),
    )
    assert len(calls) == 4 and calls[-1] == (12, 12) == (info.voters_written, 12)


def test_bad_arguments_are_refused_before_anything_is_written(
    tmp_path: Path, faces_dir: Path
) -> None:
    with pytest.raises(ValueError):
        _make(tmp_path / "a", faces_dir, stations=0)
    with pytest.raises(ValueError):
        _make(tmp_path / "b", faces_dir, stations=10_000, voters_per_station=1_000)
    with pytest.raises(FileNotFoundError):
        generate_sample(
            tmp_path / "c", stations=1, voters_per_station=1, seed=1, faces_dir=tmp_path / "none"
        )
    assert not any((tmp_path / x).exists() for x in "abc")
