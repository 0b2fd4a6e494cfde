"""A small election and helpers for the staff tests (accounts, manual count, reconciliation,
server room): two commissions, an open party list everywhere and one single-member
contest per district, so every protocol line kind is exercised and a protocol fits on
one screen."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from central import aggregate, evidence
from central.accounts import Account, create_account
from central.db import Database
from central.manual import ContestCount
from election.definition import (
    Candidate,
    Commission,
    Contest,
    ContestKind,
    District,
    ElectionDefinition,
    Gender,
    Names,
    Option,
    OptionKind,
    PartyListRules,
    PluralityRules,
    Region,
    RegionKind,
    Station,
)
from election.tally import ContestTally

FAST_SCRYPT = 2**10  # accounts made for page tests: the hash format is the same, only cheaper
PASSWORD = "correct horse battery"
T0 = dt.datetime(2026, 11, 29, 15, 30, tzinfo=dt.UTC)  # 21:30 in Bishkek, after the count
PDF = b"%PDF-1.4\n% a protocol scan\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 32


def _n(ky: str, ru: str | None = None) -> Names:
    return Names(ky=ky, ru=ru or ky)


def _station(number: int, commission: str) -> Station:
    return Station(
        id=f"uik-{number}",
        number=number,
        commission_id=commission,
        name=_n(f"№{number} УШК", f"УИК №{number}"),
        address=_n("Бишкек", "Бишкек"),
        lat="42.87000",
        lon="74.59000",
        registered_voters=1000,
    )


def _party(pid: str, name: str) -> Option:
    genders = (Gender.FEMALE, Gender.MALE, Gender.MALE)
    return Option(
        id=pid,
        kind=OptionKind.PARTY,
        name=_n(name),
        candidates=tuple(
            Candidate(id=f"{pid}-{i}", name=_n(f"{name} {i}"), gender=g, position=i)
            for i, g in enumerate(genders, start=1)
        ),
    )


AGAINST = Option(
    id="against-all", kind=OptionKind.AGAINST_ALL, name=_n("Баарына каршы", "Против всех")
)


def _smd(no: int) -> Contest:
    return Contest(
        id=f"smd-{no}",
        kind=ContestKind.SINGLE_MEMBER,
        name=_n(f"№{no} округ", f"Округ №{no}"),
        district_id=f"d{no}",
        options=(
            Option(
                id=f"smd{no}-a", kind=OptionKind.CANDIDATE, name=_n(f"A{no}"), gender=Gender.MALE
            ),
            Option(
                id=f"smd{no}-b", kind=OptionKind.CANDIDATE, name=_n(f"B{no}"), gender=Gender.FEMALE
            ),
            AGAINST,
        ),
        rules=PluralityRules(),
    )


def small_definition() -> ElectionDefinition:
    """Commission tik-a: stations 101, 102 (district d1); tik-b: station 201 (district d2)."""
    return ElectionDefinition(
        id="kg-test-staff",
        name=_n("Сыноо шайлоосу", "Тестовые выборы"),
        date=dt.date(2026, 11, 29),
        regions=(Region(id="bishkek", kind=RegionKind.CITY, name=_n("Бишкек")),),
        districts=(
            District(id="d1", region_id="bishkek", name=_n("1-округ", "Округ 1")),
            District(id="d2", region_id="bishkek", name=_n("2-округ", "Округ 2")),
        ),
        commissions=(
            Commission(id="tik-a", district_id="d1", name=_n("А АШК", "ТИК А")),
            Commission(id="tik-b", district_id="d2", name=_n("Б АШК", "ТИК Б")),
        ),
        stations=(_station(101, "tik-a"), _station(102, "tik-a"), _station(201, "tik-b")),
        contests=(
            Contest(
                id="list",
                kind=ContestKind.PARTY_LIST,
                name=_n("Партиялык тизмелер", "Партийные списки"),
                options=(_party("p1", "Партия 1"), _party("p2", "Партия 2"), AGAINST),
                rules=PartyListRules(seats=10, gender_quota_percent=None),
            ),
            _smd(1),
            _smd(2),
        ),
    )


def load(db: Database, definition: ElectionDefinition) -> None:
    """The stations and zero aggregates, as the central server creates them at start."""
    evidence.load_stations(db, definition)


def operator(db: Database, commission_id: str, username: str = "clerk-a") -> Account:
    return create_account(
        db, username, "commission_operator", commission_id, PASSWORD, scrypt_n=FAST_SCRYPT, at=T0
    )


def account(db: Database, role: str, username: str) -> Account:
    return create_account(db, username, role, None, PASSWORD, scrypt_n=FAST_SCRYPT, at=T0)


def protocol(
    definition: ElectionDefinition, station_id: str, *, shift: int = 0
) -> dict[str, ContestCount]:
    """A consistent protocol for every contest of the station (`shift` moves votes p1 -> p2)."""
    out = {}
    for c in definition.contests_for_station(station_id):
        if c.id == "list":
            votes = {"p1": 300 - shift, "p2": 200 + shift, "against-all": 50}
            prefs = {"p1-1": 100, "p1-2": 50, "p1-3": 0, "p2-1": 80, "p2-2": 0, "p2-3": 10}
        else:
            a, b = (o.id for o in c.options[:2])
            votes = {a: 280 - shift, b: 250 + shift, "against-all": 20}
            prefs = {}
        out[c.id] = ContestCount(
            contest_id=c.id,
            received=1000,
            issued=560,
            spoiled=10,
            ballots=sum(votes.values()) + 8,
            invalid=8,
            votes=votes,
            preferences=prefs,
        )
    return out


def replace(count: ContestCount, **changes: object) -> ContestCount:
    values = {**count.__dict__, **changes}
    return ContestCount(**values)  # type: ignore[arg-type]


def form_of(counts: Mapping[str, ContestCount]) -> dict[str, str]:
    """The protocol as the web form posts it."""
    out: dict[str, str] = {}
    for cid, k in counts.items():
        for line in ("received", "issued", "spoiled", "ballots", "invalid"):
            out[f"{cid}:{line}"] = str(getattr(k, line))
        out.update({f"{cid}:vote:{o}": str(n) for o, n in k.votes.items()})
        out.update({f"{cid}:pref:{c}": str(n) for c, n in k.preferences.items()})
    return out


def set_asu(
    db: Database,
    definition: ElectionDefinition,
    station_id: str,
    tallies: Mapping[str, ContestTally],
) -> None:
    """Make these the station's ASU contribution, as the ingest does for a final ASU report."""
    with db.transaction() as tx:
        changes = aggregate.Changes(definition)
        for cid, t in tallies.items():
            changes.set_tally(tx, station_id, cid, aggregate.ASU, aggregate.tally_vec(t))
        changes.flush(tx)


def asu_of(
    definition: ElectionDefinition, counts: Mapping[str, ContestCount]
) -> dict[str, ContestTally]:
    return {cid: k.tally(definition.contest(cid)) for cid, k in counts.items()}
