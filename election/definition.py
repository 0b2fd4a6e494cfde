"""The election definition: what is being decided, where, and by whom.

Every later artifact (bundles, ballots, reports, results) is bound to the
definition's hash, so the definition has exactly one canonical form: plain JSON
of the model (no floats: coordinates are decimal strings, percentages are
integers), serialised by `crypto`-compatible canonical rules (sorted keys, no
whitespace, UTF-8).  This module is pure: no I/O.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from election.canonical import canonical_json

ID_RE = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
Id = Annotated[str, Field(pattern=ID_RE)]
Decimal = Annotated[str, Field(pattern=r"^-?\d{1,3}\.\d{1,7}$")]


class DefinitionError(ValueError):
    """The definition is not internally consistent; the message says what to fix."""


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Names(Frozen):
    """A name in the languages people read it in; Kyrgyz and Russian are required."""

    ky: str = Field(min_length=1)
    ru: str = Field(min_length=1)
    en: str | None = None

    def get(self, lang: str) -> str:
        if lang == "en":
            return self.en or self.ru
        return self.ky if lang == "ky" else self.ru


class RegionKind(StrEnum):
    OBLAST = "oblast"
    CITY = "city"
    ABROAD = "abroad"


class Region(Frozen):
    id: Id
    kind: RegionKind
    name: Names


class District(Frozen):
    """An electoral district (e.g. one of the 36 single-member districts of 2021)."""

    id: Id
    region_id: Id
    name: Names


class Commission(Frozen):
    """A territorial election commission (TIK): the level above polling stations."""

    id: Id
    district_id: Id
    name: Names


class Station(Frozen):
    """A polling station (UIK), identified by its public number such as 1001."""

    id: Id
    number: int = Field(ge=1, le=99_999_999)
    commission_id: Id
    name: Names
    address: Names
    lat: Decimal
    lon: Decimal
    registered_voters: int = Field(ge=0)
    abroad: bool = False


class Gender(StrEnum):
    FEMALE = "F"
    MALE = "M"


class OptionKind(StrEnum):
    PARTY = "party"
    CANDIDATE = "candidate"
    YES = "yes"
    NO = "no"
    AGAINST_ALL = "against_all"


class Candidate(Frozen):
    """A person on a party's list (list position 1 is the top)."""

    id: Id
    name: Names
    gender: Gender
    position: int = Field(ge=1)


class Option(Frozen):
    """One box on the ballot."""

    id: Id
    kind: OptionKind
    name: Names
    gender: Gender | None = None  # for a single candidate
    candidates: tuple[Candidate, ...] = ()  # for a party on an open list


class ContestKind(StrEnum):
    PARTY_LIST = "party_list"
    SINGLE_MEMBER = "single_member"
    PRESIDENT = "president"
    REFERENDUM = "referendum"


class AllocationMethod(StrEnum):
    HARE = "hare"  # largest remainder with the Hare quota
    DHONDT = "dhondt"
    SAINTE_LAGUE = "sainte_lague"


class ThresholdBase(StrEnum):
    """What the party-list threshold is a percentage of (the law has changed it)."""

    VALID_VOTES = "valid_votes"  # votes for parties and against all
    PARTY_VOTES = "party_votes"  # votes for parties only
    BALLOTS = "ballots"  # every ballot counted, invalid included


class PartyListRules(Frozen):
    kind: Literal["party_list"] = "party_list"
    seats: int = Field(ge=1)
    threshold_percent: int = Field(default=5, ge=0, le=100)
    threshold_base: ThresholdBase = ThresholdBase.VALID_VOTES
    method: AllocationMethod = AllocationMethod.HARE
    open_list: bool = True  # reorder candidates by preference votes
    gender_quota_percent: int | None = Field(default=30, ge=0, le=50)


class PluralityRules(Frozen):
    kind: Literal["plurality"] = "plurality"
    seats: int = Field(default=1, ge=1)


class MajorityRules(Frozen):
    """President: absolute majority of those who voted, else runoff of the top two."""

    kind: Literal["majority"] = "majority"
    majority_percent: int = Field(default=50, ge=1, le=99)


class ReferendumRules(Frozen):
    """Valid only if turnout exceeds a threshold; passes with more than half of those voting."""

    kind: Literal["referendum"] = "referendum"
    turnout_threshold_percent: int = Field(default=30, ge=0, le=100)
    pass_percent: int = Field(default=50, ge=1, le=99)


Rules = Annotated[
    PartyListRules | PluralityRules | MajorityRules | ReferendumRules,
    Field(discriminator="kind"),
]

RULES_FOR_KIND: dict[ContestKind, str] = {
    ContestKind.PARTY_LIST: "party_list",
    ContestKind.SINGLE_MEMBER: "plurality",
    ContestKind.PRESIDENT: "majority",
    ContestKind.REFERENDUM: "referendum",
}

OPTION_KINDS: dict[ContestKind, frozenset[OptionKind]] = {
    ContestKind.PARTY_LIST: frozenset({OptionKind.PARTY, OptionKind.AGAINST_ALL}),
    ContestKind.SINGLE_MEMBER: frozenset({OptionKind.CANDIDATE, OptionKind.AGAINST_ALL}),
    ContestKind.PRESIDENT: frozenset({OptionKind.CANDIDATE, OptionKind.AGAINST_ALL}),
    ContestKind.REFERENDUM: frozenset({OptionKind.YES, OptionKind.NO}),
}


class Contest(Frozen):
    """One question on the ballot.  `district_id` None means nationwide."""

    id: Id
    kind: ContestKind
    name: Names
    district_id: Id | None = None
    options: tuple[Option, ...] = Field(min_length=2)
    rules: Rules

    @property
    def against_all(self) -> Option | None:
        return next((o for o in self.options if o.kind is OptionKind.AGAINST_ALL), None)

    def option(self, option_id: str) -> Option:
        for o in self.options:
            if o.id == option_id:
                return o
        raise KeyError(f"contest {self.id} has no option {option_id}")

    def candidate_ids(self) -> set[str]:
        return {c.id for o in self.options for c in o.candidates}


HHMM = Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]


class ElectionDefinition(Frozen):
    """The whole election; validated for internal consistency on construction."""

    schema_version: Literal[1] = 1
    id: Id
    name: Names
    date: dt.date
    timezone: str = "Asia/Bishkek"
    polls_open: HHMM = "08:00"
    polls_close: HHMM = "20:00"
    regions: tuple[Region, ...] = Field(min_length=1)
    districts: tuple[District, ...] = Field(min_length=1)
    commissions: tuple[Commission, ...] = Field(min_length=1)
    stations: tuple[Station, ...] = Field(min_length=1)
    contests: tuple[Contest, ...] = Field(min_length=1)
    _cache: dict[str, Any] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> ElectionDefinition:
        problems = consistency_problems(self)
        if problems:
            raise DefinitionError("; ".join(problems))
        return self

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ElectionDefinition):
            return NotImplemented
        return self.election_hash == other.election_hash

    def __hash__(self) -> int:
        return hash(self.election_hash)

    # --- lookups -----------------------------------------------------------
    def station(self, station_id: str) -> Station:
        return self._index("stations")[station_id]

    def station_by_number(self, number: int) -> Station:
        for s in self.stations:
            if s.number == number:
                return s
        raise KeyError(f"no station number {number}")

    def commission(self, commission_id: str) -> Commission:
        return self._index("commissions")[commission_id]

    def district(self, district_id: str) -> District:
        return self._index("districts")[district_id]

    def region(self, region_id: str) -> Region:
        return self._index("regions")[region_id]

    def contest(self, contest_id: str) -> Contest:
        return self._index("contests")[contest_id]

    def station_district(self, station_id: str) -> District:
        return self.district(self.commission(self.station(station_id).commission_id).district_id)

    def contests_for_station(self, station_id: str) -> tuple[Contest, ...]:
        """The contests a voter at this station gets a ballot for."""
        district_id = self.station_district(station_id).id
        return tuple(c for c in self.contests if c.district_id in (None, district_id))

    def _index(self, attr: str) -> dict[str, Any]:
        cache = self._cache
        if attr not in cache:
            cache[attr] = {x.id: x for x in getattr(self, attr)}
        return cache[attr]  # type: ignore[no-any-return]

    # --- canonical form ----------------------------------------------------
    def to_canonical_obj(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)

    def canonical_bytes(self) -> bytes:
        return canonical_json(self.to_canonical_obj())

    @property
    def election_hash(self) -> str:
        """SHA-256 (hex) of the canonical bytes; binds every artifact to this election."""
        cache = self._cache
        if "hash" not in cache:
            cache["hash"] = hashlib.sha256(self.canonical_bytes()).hexdigest()
        return cache["hash"]  # type: ignore[no-any-return]

    @classmethod
    def from_json(cls, data: bytes | str) -> ElectionDefinition:
        return cls.model_validate_json(data)


def consistency_problems(d: ElectionDefinition) -> list[str]:
    """Everything wrong with a definition, as sentences an operator can act on."""
    problems: list[str] = []

    def dupes(kind: str, ids: list[str]) -> None:
        seen: set[str] = set()
        for i in ids:
            if i in seen:
                problems.append(f"{kind} id {i!r} is used twice")
            seen.add(i)

    dupes("region", [r.id for r in d.regions])
    dupes("district", [x.id for x in d.districts])
    dupes("commission", [c.id for c in d.commissions])
    dupes("station", [s.id for s in d.stations])
    dupes("contest", [c.id for c in d.contests])
    numbers = [s.number for s in d.stations]
    if len(set(numbers)) != len(numbers):
        problems.append("two stations share a station number")
    try:
        from zoneinfo import ZoneInfo

        ZoneInfo(d.timezone)
    except Exception:
        problems.append(f"unknown time zone {d.timezone!r}")
    if d.polls_open >= d.polls_close:
        problems.append(f"polls open at {d.polls_open} but close at {d.polls_close}")

    region_ids = {r.id for r in d.regions}
    district_ids = {x.id for x in d.districts}
    commission_ids = {c.id for c in d.commissions}
    for x in d.districts:
        if x.region_id not in region_ids:
            problems.append(f"district {x.id} names unknown region {x.region_id}")
    for c in d.commissions:
        if c.district_id not in district_ids:
            problems.append(f"commission {c.id} names unknown district {c.district_id}")
    for s in d.stations:
        if s.commission_id not in commission_ids:
            problems.append(f"station {s.id} names unknown commission {s.commission_id}")

    for contest in d.contests:
        problems.extend(_contest_problems(contest, district_ids))
    return problems


def _contest_problems(c: Contest, district_ids: set[str]) -> list[str]:
    out: list[str] = []
    where = f"contest {c.id}"
    if c.rules.kind != RULES_FOR_KIND[c.kind]:
        out.append(f"{where} is {c.kind.value} but has {c.rules.kind} rules")
    if c.district_id is not None and c.district_id not in district_ids:
        out.append(f"{where} names unknown district {c.district_id}")
    if c.kind in (ContestKind.PARTY_LIST, ContestKind.PRESIDENT) and c.district_id is not None:
        out.append(f"{where} is nationwide by nature and cannot have a district")
    allowed = OPTION_KINDS[c.kind]
    ids = [o.id for o in c.options]
    if len(set(ids)) != len(ids):
        out.append(f"{where} has two options with one id")
    cand_ids = [x.id for o in c.options for x in o.candidates]
    if len(set(cand_ids)) != len(cand_ids) or set(cand_ids) & set(ids):
        out.append(f"{where} uses a candidate id twice")
    if sum(o.kind is OptionKind.AGAINST_ALL for o in c.options) > 1:
        out.append(f"{where} has more than one 'against all' option")
    for o in c.options:
        if o.kind not in allowed:
            out.append(f"{where} cannot have a {o.kind.value} option ({o.id})")
        if o.candidates and o.kind is not OptionKind.PARTY:
            out.append(f"{where}: only a party option has a candidate list ({o.id})")
        positions = [x.position for x in o.candidates]
        if sorted(positions) != list(range(1, len(positions) + 1)):
            out.append(f"{where}: party {o.id} list positions must be 1..{len(positions)}")
    if c.kind is ContestKind.REFERENDUM and {o.kind for o in c.options} != {
        OptionKind.YES,
        OptionKind.NO,
    }:
        out.append(f"{where} must have exactly a yes and a no option")
    if c.kind is ContestKind.REFERENDUM and len(c.options) != 2:
        out.append(f"{where} must have exactly two options")
    if isinstance(c.rules, PartyListRules):
        parties = [o for o in c.options if o.kind is OptionKind.PARTY]
        if not parties:
            out.append(f"{where} has no parties")
    if isinstance(c.rules, PluralityRules):
        n = sum(o.kind is OptionKind.CANDIDATE for o in c.options)
        if n < c.rules.seats:
            out.append(f"{where} has {n} candidates for {c.rules.seats} seats")
    return out
