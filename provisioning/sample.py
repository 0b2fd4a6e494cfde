"""Realistic, Kyrgyz-shaped sample elections for demos, tests and benchmarks.

`generate_sample` writes an election definition, a voter roll CSV of any size,
the real enrolment and probe photos the roll points to, and a small truth file.
Everything is a pure function of the arguments: the same seed gives the same
bytes (no global random, no clock, no set or hash ordering), so a benchmark or
a bug report can name its data by seed alone.

The roll is streamed station by station: millions of rows cost seconds and a
few megabytes, not one object per voter.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from election.definition import (
    AllocationMethod,
    Candidate,
    Commission,
    Contest,
    ContestKind,
    District,
    ElectionDefinition,
    Gender,
    MajorityRules,
    Names,
    Option,
    OptionKind,
    PartyListRules,
    PluralityRules,
    ReferendumRules,
    Region,
    RegionKind,
    Station,
)
from provisioning import sample_data as data

Kind = Literal["parliament", "presidential"]

ROLL_HEADER = (
    "pin,last_name,first_name,patronymic,birth_date,gender,station,document_no,photo,home_vote"
)
GENERATOR = "shailoo.provisioning.sample"
FORMAT_VERSION = 1
SMD_COUNT = 36  # single-member districts at full size, as in 2021
LIST_SEATS = 54
MAX_VOTERS = 9_999_999  # document numbers are ID + 7 digits, one per voter
NO_PHOTO_SHARE = 0.01  # voters whose enrolment photo is missing
ENROLL_PREFIX = "enroll."
PROBE_PREFIX = "probe"
_IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


@dataclass(frozen=True, slots=True)
class SampleInfo:
    """What was written; `seconds` is wall time and is the only non-reproducible field."""

    definition: ElectionDefinition
    roll_path: Path
    photos_dir: Path
    voters_written: int
    seconds: float


@dataclass(frozen=True, slots=True)
class _StationPlan:
    number: int
    region: data.RegionData
    district_no: int  # 0 = the abroad district
    commission_id: str
    rayon: data.Rayon | None  # None abroad
    abroad_place: int  # index into data.ABROAD_PLACES, -1 at home


@dataclass(frozen=True, slots=True)
class Face:
    """One real person of the face test set: the enrolment photo and other photos of them."""

    person: str
    enroll: Path
    probes: tuple[Path, ...]

    @property
    def photo_name(self) -> str:
        return self.person + self.enroll.suffix.lower()


# --- public API -------------------------------------------------------------------


def generate_sample(
    out_dir: Path,
    *,
    stations: int,
    voters_per_station: int,
    seed: int,
    kind: Kind = "parliament",
    faces_dir: Path,
    election_date: dt.date = dt.date(2026, 11, 29),
    progress: Callable[[int, int], None] | None = None,
) -> SampleInfo:
    """Write a complete sample election into `out_dir` and say what was written.

    `progress(voters_done, voters_total)` is called after each station.  An
    `out_dir` that holds anything other than an earlier sample is refused, so a
    typo cannot overwrite real data.
    """
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    total = stations * voters_per_station
    if total > MAX_VOTERS:
        raise ValueError(f"at most {MAX_VOTERS} voters (ID + 7 digits), asked for {total}")
    faces = find_faces(Path(faces_dir))
    if not faces:
        raise ValueError(f"no enrolment photos (<person>/enroll.*) in {faces_dir}")
    definition = build_definition(
        stations=stations,
        voters_per_station=voters_per_station,
        seed=seed,
        kind=kind,
        election_date=election_date,
    )
    _prepare_out_dir(out_dir)
    (out_dir / "election.json").write_text(
        definition.model_dump_json(indent=1, exclude_none=True) + "\n", encoding="utf-8"
    )
    photos_dir = out_dir / "photos"
    _copy_faces(faces, out_dir)
    roll_path = out_dir / "roll.csv"
    stats = _write_roll(
        roll_path,
        definition,
        faces=[f.photo_name for f in faces],
        seed=seed,
        election_date=election_date,
        progress=progress,
    )
    truth = {
        "generator": GENERATOR,
        "format": FORMAT_VERSION,
        "seed": seed,
        "kind": kind,
        "election_id": definition.id,
        "election_hash": definition.election_hash,
        "election_date": election_date.isoformat(),
        "stations": len(definition.stations),
        "stations_abroad": sum(s.abroad for s in definition.stations),
        "voters_per_station": voters_per_station,
        "regions": len(definition.regions),
        "districts": len(definition.districts),
        "commissions": len(definition.commissions),
        "contests": len(definition.contests),
        "faces": len(faces),
        **stats,
    }
    (out_dir / "truth.json").write_text(
        json.dumps(truth, ensure_ascii=False, indent=1, sort_keys=True) + "\n", encoding="utf-8"
    )
    return SampleInfo(
        definition=definition,
        roll_path=roll_path,
        photos_dir=photos_dir,
        voters_written=stats["voters"],
        seconds=time.perf_counter() - t0,
    )


def build_definition(
    *,
    stations: int,
    voters_per_station: int,
    seed: int,
    kind: Kind = "parliament",
    election_date: dt.date = dt.date(2026, 11, 29),
) -> ElectionDefinition:
    """The sample election definition alone (no files): same arguments, same hash."""
    if stations < 1:
        raise ValueError(f"need at least one station, got {stations}")
    if voters_per_station < 0:
        raise ValueError(f"voters per station cannot be negative, got {voters_per_station}")
    if kind not in ("parliament", "presidential"):
        raise ValueError(f"kind must be parliament or presidential, got {kind!r}")
    rng = random.Random(f"shailoo-sample/{seed}/geography")
    plans = _plan_stations(stations, rng)
    regions, districts, commissions = _hierarchy(plans)
    station_models = tuple(_station(p, voters_per_station, rng) for p in plans)
    crng = random.Random(f"shailoo-sample/{seed}/contests/{kind}")
    names = _CandidateNames(crng)
    if kind == "parliament":
        region_of = {r.id: r for r in data.REGIONS}
        contests: list[Contest] = [_party_list(crng, names)]
        contests += [
            _single_member(crng, names, d, region_of[d.region_id])
            for d in districts
            if d.id != "abroad"
        ]
        title = (
            f"Кыргыз Республикасынын Жогорку Кеңешинин депутаттарын шайлоо {election_date.year}",
            f"Выборы депутатов Жогорку Кенеша Кыргызской Республики {election_date.year}",
            f"Election of the Jogorku Kenesh of the Kyrgyz Republic {election_date.year}",
        )
    else:
        contests = [_president(crng, names), _referendum()]
        title = (
            f"Кыргыз Республикасынын Президентин шайлоо жана референдум {election_date.year}",
            f"Выборы Президента Кыргызской Республики и референдум {election_date.year}",
            f"Presidential election and referendum of the Kyrgyz Republic {election_date.year}",
        )
    return ElectionDefinition(
        id=f"kg-{election_date.year}-{kind}",
        name=_names(*title),
        date=election_date,
        timezone="Asia/Bishkek",
        polls_open="08:00",
        polls_close="20:00",
        regions=regions,
        districts=districts,
        commissions=commissions,
        stations=station_models,
        contests=tuple(contests),
    )


def find_faces(faces_dir: Path) -> list[Face]:
    """People in a face test set: each folder's enroll.* and probe*.*, sorted.

    Folders starting with "_" or "." (such as `_multiple_faces`) are not people.
    """
    if not faces_dir.is_dir():
        raise FileNotFoundError(f"faces directory {faces_dir} does not exist")
    faces = []
    for person_dir in sorted(faces_dir.iterdir()):
        if not person_dir.is_dir() or person_dir.name.startswith(("_", ".")):
            continue
        images = sorted(
            p for p in person_dir.iterdir() if p.is_file() and p.suffix.lower() in _IMAGE_EXTS
        )
        enrolls = [p for p in images if p.name.lower().startswith(ENROLL_PREFIX)]
        if not enrolls:
            continue
        probes = tuple(p for p in images if p.name.lower().startswith(PROBE_PREFIX))
        faces.append(Face(person_dir.name, enrolls[0], probes))
    return faces


# --- geography --------------------------------------------------------------------


def _largest_remainder(total: int, weights: Sequence[int]) -> list[int]:
    """Split `total` in proportion to `weights`; ties go to the earlier entry."""
    wsum = sum(weights)
    quotas = [total * w for w in weights]
    out = [q // wsum for q in quotas]
    order = sorted(range(len(weights)), key=lambda i: (-(quotas[i] % wsum), i))
    for i in order[: total - sum(out)]:
        out[i] += 1
    return out


def _split(n: int, parts: int) -> list[int]:
    """n items into `parts` contiguous runs as equal as possible (bigger runs first)."""
    return [n // parts + (1 if i < n % parts else 0) for i in range(parts)]


def _plan_stations(stations: int, rng: random.Random) -> list[_StationPlan]:
    """Stations over regions by population, districts, commissions; numbered by region.

    At 36 or more stations at home there are always the 36 single-member
    districts of the law (each region first gets one station per district);
    fewer stations make fewer districts, at least one per region used.
    """
    abroad = max(1, round(stations * 0.02)) if stations >= 20 else 0
    home = stations - abroad
    shares = [r.share for r in data.REGIONS]
    if home >= SMD_COUNT:
        base = [r.districts for r in data.REGIONS]
        extra = _largest_remainder(home - SMD_COUNT, shares)
        per_region = [b + e for b, e in zip(base, extra, strict=True)]
    else:
        per_region = _largest_remainder(home, shares)
    biggest = max([*per_region, abroad])
    block = 1000
    while biggest >= block:
        block *= 10

    plans: list[_StationPlan] = []
    district_no = 0
    for region, n_region in zip(data.REGIONS, per_region, strict=True):
        if n_region == 0:
            continue
        number = region.code * block + 1
        n_districts = min(region.districts, n_region)
        tik_in_region = 0
        for n_district in _split(n_region, n_districts):
            district_no += 1
            n_tiks = min(n_district, 1 + rng.randrange(3))
            for n_tik in _split(n_district, n_tiks):
                rayon = region.rayons[tik_in_region % len(region.rayons)]
                tik_id = f"tik-{region.id}-{tik_in_region + 1:02d}"
                tik_in_region += 1
                for _ in range(n_tik):
                    plans.append(_StationPlan(number, region, district_no, tik_id, rayon, -1))
                    number += 1
    if abroad:
        number = data.ABROAD.code * block + 1
        place = 0
        for t, n_tik in enumerate(_split(abroad, min(abroad, 1 + rng.randrange(3)))):
            for _ in range(n_tik):
                place_idx = place % len(data.ABROAD_PLACES)
                tik = f"tik-abroad-{t + 1:02d}"
                plans.append(_StationPlan(number, data.ABROAD, 0, tik, None, place_idx))
                number += 1
                place += 1
    return plans


def _names(ky: str, ru: str, en: str | None = None) -> Names:
    return Names(ky=ky, ru=ru, en=en)


def _district_id(no: int) -> str:
    return "abroad" if no == 0 else f"district-{no:02d}"


def _hierarchy(
    plans: list[_StationPlan],
) -> tuple[tuple[Region, ...], tuple[District, ...], tuple[Commission, ...]]:
    regions: dict[str, Region] = {}
    districts: dict[str, District] = {}
    commissions: dict[str, Commission] = {}
    rayon_uses: dict[tuple[str, str], int] = {}
    for p in plans:
        r = p.region
        if r.id not in regions:
            regions[r.id] = Region(id=r.id, kind=RegionKind(r.kind), name=_names(r.ky, r.ru, r.en))
        did = _district_id(p.district_no)
        if did not in districts:
            if p.district_no == 0:
                name = _names(
                    "Чет өлкөлөрдөгү шайлоо участоктору",
                    "Избирательные участки за рубежом",
                    "Polling stations abroad",
                )
            else:
                name = _names(
                    f"№{p.district_no} шайлоо округу ({r.ky})",
                    f"Избирательный округ №{p.district_no} ({r.ru})",
                    f"Electoral district No. {p.district_no} ({r.en})",
                )
            districts[did] = District(id=did, region_id=r.id, name=name)
        if p.commission_id not in commissions:
            if p.rayon is None:
                k = int(p.commission_id.rsplit("-", 1)[1])
                name = _names(
                    f"Чет өлкөлөрдөгү участоктор боюнча №{k} аймактык шайлоо комиссиясы",
                    f"Территориальная избирательная комиссия №{k} по зарубежным участкам",
                    f"Territorial Election Commission No. {k} for stations abroad",
                )
            else:
                y = p.rayon
                key = (r.id, y.ky)
                rayon_uses[key] = uses = rayon_uses.get(key, 0) + 1
                suffix = "" if uses == 1 else f" №{uses}"
                suffix_en = "" if uses == 1 else f" No. {uses}"
                level_ky, level_ru, level_en = (
                    ("шаардык", "городская", "City")
                    if y.city
                    else ("райондук", "районная", "District")
                )
                name = _names(
                    f"{y.ky} {level_ky} аймактык шайлоо комиссиясы{suffix}",
                    f"{y.ru_stem}ая {level_ru} территориальная избирательная комиссия{suffix}",
                    f"{y.en} {level_en} Territorial Election Commission{suffix_en}",
                )
            commissions[p.commission_id] = Commission(
                id=p.commission_id, district_id=did, name=name
            )
    return tuple(regions.values()), tuple(districts.values()), tuple(commissions.values())


def _coord(value: float, lo: float, hi: float) -> str:
    return f"{min(max(value, lo), hi):.5f}"


def _station(p: _StationPlan, voters: int, rng: random.Random) -> Station:
    r = p.region
    n = p.number
    if p.rayon is None:
        c_ky, c_ru, place_ky, place_ru, a_ky, a_ru, lat0, lon0 = data.ABROAD_PLACES[p.abroad_place]
        address = _names(f"{c_ky}, {place_ky}, {a_ky}", f"{c_ru}, {place_ru}, {a_ru}")
        lat = f"{lat0 + rng.uniform(-0.01, 0.01):.5f}"
        lon = f"{lon0 + rng.uniform(-0.01, 0.01):.5f}"
    else:
        y = p.rayon
        b_ky, b_ru = data.BUILDINGS[rng.randrange(len(data.BUILDINGS))]
        b_no = str(1 + rng.randrange(95))
        house = 1 + rng.randrange(240)
        if r.kind == "city":
            streets = data.BISHKEK_STREETS if r.id == "bishkek" else data.OSH_STREETS
            s_ky, s_ru = streets[rng.randrange(len(streets))]
            head_ky, head_ru, spread = r.addr_ky, r.addr_ru, 0.025
        else:
            s_ky, s_ru = data.TOWN_STREETS[rng.randrange(len(data.TOWN_STREETS))]
            if y.city:
                head_ky, head_ru = f"{r.addr_ky}, {y.place_ky}", f"{r.addr_ru}, {y.place_ru}"
            else:
                head_ky = f"{r.addr_ky}, {y.ky} району, {y.place_ky}"
                head_ru = f"{r.addr_ru}, {y.ru_stem}ий р-н, {y.place_ru}"
            spread = 0.02 if y.city else 0.08
        address = _names(
            f"{head_ky}, {s_ky}, {house}, {b_ky.format(n=b_no)}",
            f"{head_ru}, {s_ru}, {house}, {b_ru.format(n=b_no)}",
        )
        lat_lo, lat_hi, lon_lo, lon_hi = r.bbox
        lat = _coord(rng.gauss(y.lat, spread), lat_lo, lat_hi)
        lon = _coord(rng.gauss(y.lon, spread * 1.3), lon_lo, lon_hi)
    return Station(
        id=f"uik-{n}",
        number=n,
        commission_id=p.commission_id,
        name=_names(
            f"№{n} шайлоо участкалык комиссиясы",
            f"№{n} участковая избирательная комиссия",
            f"Precinct Election Commission No. {n}",
        ),
        address=address,
        lat=lat,
        lon=lon,
        registered_voters=voters,
        abroad=p.rayon is None,
    )


# --- contests ---------------------------------------------------------------------

_AGAINST_ALL_ID = "against-all"


def _against_all() -> Option:
    return Option(id=_AGAINST_ALL_ID, kind=OptionKind.AGAINST_ALL, name=_names(*data.AGAINST_ALL))


class _CandidateNames:
    """Distinct, gender-consistent full names for candidates across the whole election."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._used: set[str] = set()

    def draw(self, gender: Gender, ethnic: tuple[int, int, int] = (80, 15, 5)) -> Names:
        rng = self._rng
        while True:
            g = rng.choices(range(3), weights=ethnic)[0]
            males, females, surnames = data.GROUPS[g]
            female = gender is Gender.FEMALE
            last = surnames[rng.randrange(len(surnames))]
            if female:
                last = data.female_surname(last)
            first = (females if female else males)[rng.randrange(len(females if female else males))]
            father = males[rng.randrange(len(males))]
            patr = data.patronymics(father)[1 if female else 0]
            ky = f"{last} {first} {patr}"
            if ky not in self._used:
                self._used.add(ky)
                en = f"{data.to_latin(first)} {data.to_latin(last)}"
                return _names(ky, data.to_russian_spelling(ky), en)


def _gender(rng: random.Random, p_female: float) -> Gender:
    return Gender.FEMALE if rng.random() < p_female else Gender.MALE


def _list_genders(rng: random.Random, n: int) -> list[Gender]:
    """Both genders in every three consecutive positions (so each is >= 30% of n >= 10)."""
    out: list[Gender] = []
    for start in range(0, n, 3):
        size = min(3, n - start)
        if size == 1:
            out.append(_gender(rng, 0.4))
            continue
        block = [Gender.FEMALE, Gender.MALE] + [_gender(rng, 0.4) for _ in range(size - 2)]
        rng.shuffle(block)
        out.extend(block)
    return out


def _slug(s: str) -> str:
    return "-".join("".join(c if c.isalnum() else " " for c in s.lower()).split())


def _party_list(rng: random.Random, names: _CandidateNames) -> Contest:
    pool = list(data.PARTIES)
    parties = rng.sample(pool, rng.randint(13, 16))  # ballot order by lot
    options = []
    for ky, ru, en in parties:
        pid = _slug(en)
        n = rng.randint(10, 20)
        candidates = tuple(
            Candidate(id=f"{pid}-{pos:02d}", name=names.draw(g), gender=g, position=pos)
            for pos, g in enumerate(_list_genders(rng, n), start=1)
        )
        options.append(
            Option(id=pid, kind=OptionKind.PARTY, name=_names(ky, ru, en), candidates=candidates)
        )
    options.append(_against_all())
    return Contest(
        id="parliament-list",
        kind=ContestKind.PARTY_LIST,
        name=_names(
            "Жогорку Кеңешке партиялык тизмелер боюнча шайлоо",
            "Выборы в Жогорку Кенеш по партийным спискам",
            "Jogorku Kenesh, party lists",
        ),
        options=tuple(options),
        rules=PartyListRules(
            seats=LIST_SEATS,
            threshold_percent=5,
            method=AllocationMethod.HARE,
            open_list=True,
            gender_quota_percent=30,
        ),
    )


def _single_member(
    rng: random.Random, names: _CandidateNames, district: District, region: data.RegionData
) -> Contest:
    no = int(district.id.rsplit("-", 1)[1])
    cid = f"smd-{no:02d}"
    options = []
    for k in range(1, rng.randint(3, 8) + 1):
        g = _gender(rng, 0.25)
        options.append(
            Option(
                id=f"{cid}-c{k}",
                kind=OptionKind.CANDIDATE,
                name=names.draw(g, region.ethnic),
                gender=g,
            )
        )
    options.append(_against_all())
    return Contest(
        id=cid,
        kind=ContestKind.SINGLE_MEMBER,
        name=_names(
            f"Жогорку Кеңешке №{no} бир мандаттуу шайлоо округу боюнча шайлоо",
            f"Выборы в Жогорку Кенеш по одномандатному избирательному округу №{no}",
            f"Jogorku Kenesh, single-member district No. {no}",
        ),
        district_id=district.id,
        options=tuple(options),
        rules=PluralityRules(seats=1),
    )


def _president(rng: random.Random, names: _CandidateNames) -> Contest:
    options = []
    for k in range(1, rng.randint(6, 17) + 1):
        g = _gender(rng, 0.15)
        options.append(
            Option(
                id=f"president-c{k:02d}", kind=OptionKind.CANDIDATE, name=names.draw(g), gender=g
            )
        )
    options.append(_against_all())
    return Contest(
        id="president",
        kind=ContestKind.PRESIDENT,
        name=_names(
            "Кыргыз Республикасынын Президентин шайлоо",
            "Выборы Президента Кыргызской Республики",
            "Election of the President of the Kyrgyz Republic",
        ),
        options=tuple(options),
        rules=MajorityRules(),
    )


def _referendum() -> Contest:
    return Contest(
        id="referendum",
        kind=ContestKind.REFERENDUM,
        name=_names(*data.REFERENDUM_QUESTION),  # the model has no separate question field
        options=(
            Option(id="yes", kind=OptionKind.YES, name=_names("Ооба", "Да", "Yes")),
            Option(id="no", kind=OptionKind.NO, name=_names("Жок", "Нет", "No")),
        ),
        rules=ReferendumRules(),
    )


# --- files ------------------------------------------------------------------------


def _prepare_out_dir(out_dir: Path) -> None:
    """Create `out_dir`, or clear what an earlier sample left in it; refuse anything else."""
    if out_dir.exists():
        if not out_dir.is_dir():
            raise NotADirectoryError(f"{out_dir} is not a directory")
        if any(out_dir.iterdir()):
            truth = out_dir / "truth.json"
            try:
                earlier = json.loads(truth.read_text(encoding="utf-8")).get("generator")
            except (OSError, ValueError, AttributeError):
                earlier = None
            if earlier != GENERATOR:
                raise FileExistsError(
                    f"{out_dir} is not empty and holds no earlier sample; choose an empty directory"
                )
            for sub in ("photos", "probes"):
                if (out_dir / sub).is_dir():
                    shutil.rmtree(out_dir / sub)
            for name in ("election.json", "roll.csv", "faces.json", "truth.json"):
                (out_dir / name).unlink(missing_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)


def _copy_faces(faces: list[Face], out_dir: Path) -> None:
    """Each real face once into photos/, its probes into probes/<person>/, and faces.json."""
    photos_dir = out_dir / "photos"
    photos_dir.mkdir()
    photos: dict[str, str] = {}
    probes: dict[str, list[str]] = {}
    for f in faces:
        shutil.copyfile(f.enroll, photos_dir / f.photo_name)
        photos[f.photo_name] = f.person
        person_dir = out_dir / "probes" / f.person
        if f.probes:
            person_dir.mkdir(parents=True)
        probes[f.person] = []
        for p in f.probes:
            shutil.copyfile(p, person_dir / p.name)
            probes[f.person].append(f"probes/{f.person}/{p.name}")
    doc = {"photos": photos, "probes": probes}
    (out_dir / "faces.json").write_text(
        json.dumps(doc, ensure_ascii=False, indent=1, sort_keys=True) + "\n", encoding="utf-8"
    )


def _birth_bounds(election_date: dt.date, age: int) -> tuple[int, int]:
    """Ordinals of the earliest and latest birth date giving exactly `age` on election day."""

    def years_before(n: int) -> dt.date:
        try:
            return election_date.replace(year=election_date.year - n)
        except ValueError:  # 29 February
            return election_date.replace(year=election_date.year - n, day=28)

    return years_before(age + 1).toordinal() + 1, years_before(age).toordinal()


def _female_share(age: int) -> float:
    """Women outlive men: about 52% of the roll overall, more among the old."""
    if age < 40:
        return 0.50
    if age < 60:
        return 0.53
    if age < 70:
        return 0.58
    return 0.65


def _home_share(age: int) -> float:
    """Who asks for the mobile box: mostly the old and the ill (about 2% overall)."""
    if age < 60:
        return 0.012
    if age < 75:
        return 0.04
    return 0.15


# (surnames, n, first names, n, patronymics, n, PIN sex digit)
_Pool = tuple[list[str], int, list[str], int, list[str], int, str]


def _name_pools(ethnic: tuple[int, int, int]) -> tuple[list[int], list[_Pool]]:
    """Per (group, sex): surnames, first names, patronymics, ready to index."""
    pools: list[_Pool] = []
    for g, (males, females, surnames) in enumerate(data.GROUPS):
        for female in (False, True):
            lasts = [data.female_surname(s) for s in surnames] if female else list(surnames)
            firsts = list(females if female else males)
            patrs = [data.patronymics(f)[1 if female else 0] for f in males]
            if g == 0:  # Kyrgyz: one in five writes "Бакыт уулу" / "Бакыт кызы"
                patrs = patrs * 4 + [f"{f} {'кызы' if female else 'уулу'}" for f in males]
            pools.append(
                (lasts, len(lasts), firsts, len(firsts), patrs, len(patrs), "1" if female else "2")
            )
    total = sum(ethnic)
    cum = [ethnic[0] / total, (ethnic[0] + ethnic[1]) / total]
    return [int(c * 1_000_000) for c in cum], pools


def _write_roll(
    path: Path,
    definition: ElectionDefinition,
    *,
    faces: list[str],
    seed: int,
    election_date: dt.date,
    progress: Callable[[int, int], None] | None,
) -> dict[str, int]:
    """Stream the roll, station by station, each station's voters sorted by name."""
    rng = random.Random(f"shailoo-sample/{seed}/roll")
    rnd = rng.random

    # Ages: a lookup table so one random number picks an age by its weight.
    age_table: list[int] = []
    for age, w in data.AGE_WEIGHTS:
        age_table += [age] * w
    n_age = len(age_table)
    ages = [a for a, _ in data.AGE_WEIGHTS]
    lo_ord = _birth_bounds(election_date, max(ages))[0]
    hi_ord = _birth_bounds(election_date, min(ages))[1]
    latest = {a: _birth_bounds(election_date, a)[1] - lo_ord for a in ages}
    span = {
        a: _birth_bounds(election_date, a)[1] - _birth_bounds(election_date, a)[0] + 1 for a in ages
    }
    per_age = {a: (latest[a], span[a], _female_share(a), _home_share(a)) for a in ages}
    day_strings = []
    for o in range(lo_ord, hi_ord + 1):
        d = dt.date.fromordinal(o)
        day_strings.append((f"{d.day:02d}{d.month:02d}{d.year:04d}", d.isoformat()))
    serial_count = [0] * (2 * len(day_strings))
    serial_step = 40_503  # coprime with 100000: serials within one birth date never repeat
    serial_offset = rng.randrange(100_000)

    n_faces = len(faces)
    no_photo = round(NO_PHOTO_SHARE * 100)
    photo_pool = [""] * (no_photo * n_faces) + faces * (100 - no_photo)
    n_pool = len(photo_pool)

    doc_step = 7_654_321  # coprime with 10**7: a bijection from row index to document number
    doc_offset = rng.randrange(10_000_000)
    row_index = 0

    region_of_station = {
        s.number: definition.district(definition.commission(s.commission_id).district_id).region_id
        for s in definition.stations
    }
    region_data = {r.id: r for r in (*data.REGIONS, data.ABROAD)}
    pools_cache: dict[str, tuple[list[int], list[_Pool]]] = {}

    total = sum(s.registered_voters for s in definition.stations)
    written = women = home = without_photo = 0
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", encoding="utf-8", newline="\n", buffering=1 << 20) as out:
        out.write(ROLL_HEADER + "\n")
        for station in sorted(definition.stations, key=lambda s: s.number):
            rid = region_of_station[station.number]
            if rid not in pools_cache:
                pools_cache[rid] = _name_pools(region_data[rid].ethnic)
            (c1, c2), pools = pools_cache[rid]
            num = station.number
            rows = []
            for _ in range(station.registered_voters):
                age = age_table[int(rnd() * n_age)]
                last_day, days, p_female, p_home = per_age[age]
                day = last_day - int(rnd() * days)
                female = rnd() < p_female
                e = int(rnd() * 1_000_000)
                pool = pools[(0 if e < c1 else 2 if e < c2 else 4) + female]
                lasts, nl, firsts, nf, patrs, np_, sex = pool
                key = 2 * day + female
                count = serial_count[key]
                serial_count[key] = count + 1
                if count >= 100_000:
                    raise ValueError("more than 100000 voters share a birth date and sex")
                dd, iso = day_strings[day]
                serial = (serial_offset + 7919 * key + serial_step * count) % 100_000
                doc = (doc_offset + doc_step * row_index) % 10_000_000
                row_index += 1
                photo = photo_pool[int(rnd() * n_pool)]
                hv = "1" if rnd() < p_home else "0"
                rows.append(
                    (
                        lasts[int(rnd() * nl)],
                        firsts[int(rnd() * nf)],
                        patrs[int(rnd() * np_)],
                        f"{sex}{dd}{serial:05d}",
                        f",{iso},{'F' if female else 'M'},{num},ID{doc:07d},{photo},{hv}\n",
                    )
                )
                women += female
                home += hv == "1"
                without_photo += not photo
            rows.sort()
            out.write("".join([f"{p},{a},{b},{c}{t}" for a, b, c, p, t in rows]))
            written += len(rows)
            if progress is not None:
                progress(written, total)
    os.replace(tmp, path)
    return {
        "voters": written,
        "women": women,
        "home_vote": home,
        "without_photo": without_photo,
    }


def sample_faces(sample_dir: Path) -> tuple[dict[str, str], dict[str, list[Path]]]:
    """Who is who in a generated sample: photo content sha256 -> person, person -> probes.

    A voter's `template` in the validated roll is the sha256 of their photo, so
    demos and tests can put that person's probe photo in front of the camera.
    """
    import hashlib
    import json

    faces = json.loads((sample_dir / "faces.json").read_text())
    person_of = {
        hashlib.sha256((sample_dir / "photos" / name).read_bytes()).hexdigest(): person
        for name, person in faces["photos"].items()
    }
    probes = {person: [sample_dir / r for r in rels] for person, rels in faces["probes"].items()}
    return person_of, probes
