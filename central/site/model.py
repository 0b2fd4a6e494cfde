"""What the public site shows, indexed: the definition's units and the published document.

`Geo` is built once per app from the election definition: every unit with its
parent, children, names and the contests that cover it.  `Snapshot` is one
published results version (central.results.latest_published), parsed once and
indexed for lookups; the site never recomputes a tally or a share, it only reads
these.  A Snapshot with version 0 stands for "nothing published yet".
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from central.results import Published
from election.definition import Contest, ElectionDefinition, Names, Station

LEVELS = ("nation", "region", "district", "commission", "station")
NATION = "nation"
SOURCES = ("asu", "manual")  # preliminary (ASU), final (manual count)
INVALID = "_invalid"  # the key of invalid ballots in shares whose base is all ballots
Key = tuple[str, str]  # (level, unit id)


@dataclass(frozen=True)
class Unit:
    level: str
    id: str
    name: Names
    parent: Key | None
    children: tuple[Key, ...]
    registered: int
    stations: int
    station: Station | None = None

    @property
    def key(self) -> Key:
        return (self.level, self.id)


class Geo:
    """The definition's hierarchy nation > region > district > commission > station."""

    def __init__(self, definition: ElectionDefinition, nation_name: Names) -> None:
        self.definition = definition
        d = definition
        children: dict[Key, list[Key]] = {}
        parent: dict[Key, Key] = {}
        for r in d.regions:
            parent[("region", r.id)] = (NATION, NATION)
        for x in d.districts:
            parent[("district", x.id)] = ("region", x.region_id)
        for cm in d.commissions:
            parent[("commission", cm.id)] = ("district", cm.district_id)
        for s in d.stations:
            parent[("station", s.id)] = ("commission", s.commission_id)
        for child, p in parent.items():
            children.setdefault(p, []).append(child)
        registered: dict[Key, int] = {}
        count: dict[Key, int] = {}
        for s in d.stations:
            k: Key | None = ("station", s.id)
            while k is not None:
                registered[k] = registered.get(k, 0) + s.registered_voters
                count[k] = count.get(k, 0) + 1
                k = parent.get(k)
        names: dict[Key, Names] = {(NATION, NATION): nation_name}
        names.update({("region", r.id): r.name for r in d.regions})
        names.update({("district", x.id): x.name for x in d.districts})
        names.update({("commission", cm.id): cm.name for cm in d.commissions})
        names.update({("station", s.id): s.name for s in d.stations})
        self.units: dict[Key, Unit] = {}
        for key, name in names.items():
            self.units[key] = Unit(
                level=key[0],
                id=key[1],
                name=name,
                parent=parent.get(key),
                children=tuple(sorted(children.get(key, []), key=self._order)),
                registered=registered.get(key, 0),
                stations=count.get(key, 0),
                station=d.station(key[1]) if key[0] == "station" else None,
            )
        # contests covering each unit: nationwide ones everywhere, a district's own below it
        self.contests_at: dict[Key, list[Contest]] = {}
        for key in self.units:
            district = self.district_of(key)
            self.contests_at[key] = [
                c
                for c in d.contests
                if c.district_id is None or (district is not None and c.district_id == district)
            ]
        self.district_contests: dict[str, list[Contest]] = {}
        for c in d.contests:
            if c.district_id is not None:
                self.district_contests.setdefault(c.district_id, []).append(c)

    def _order(self, key: Key) -> tuple[int, str]:
        if key[0] == "station":
            return (self.definition.station(key[1]).number, key[1])
        return (0, "")  # definition order (sorted() is stable)

    def unit(self, level: str, unit_id: str) -> Unit:
        """The unit, or KeyError."""
        return self.units[(level, unit_id)]

    def path(self, key: Key) -> list[Unit]:
        """The unit and its ancestors, the nation first."""
        out = []
        k: Key | None = key
        while k is not None:
            out.append(self.units[k])
            k = self.units[k].parent
        return out[::-1]

    def district_of(self, key: Key) -> str | None:
        for u in self.path(key):
            if u.level == "district":
                return u.id
        return None

    def smd_below(self, key: Key) -> list[Contest]:
        """District contests whose district lies inside this unit (nation or region)."""
        if key[0] not in (NATION, "region"):
            return []
        out = []
        for c in self.definition.contests:
            if c.district_id is not None and key in [
                u.key for u in self.path(("district", c.district_id))
            ]:
                out.append(c)
        return out

    def contest_top(self, contest: Contest) -> Key:
        """The unit a contest's outcome is decided at."""
        return (
            (NATION, NATION) if contest.district_id is None else ("district", contest.district_id)
        )


@dataclass(frozen=True)
class Snapshot:
    """One published version, parsed and indexed (version 0: nothing published yet)."""

    version: int
    published_at: str | None
    sha256: str | None
    text: str | None
    doc: Mapping[str, Any] | None
    turnout: Mapping[Key, Mapping[str, Any]] = field(default_factory=dict)
    tallies: Mapping[tuple[str, str, str], Mapping[str, Any]] = field(default_factory=dict)
    outcomes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def published(self) -> bool:
        return self.doc is not None

    @property
    def as_of(self) -> str | None:
        return None if self.doc is None else self.doc.get("as_of")

    @property
    def hours(self) -> list[str]:
        return [] if self.doc is None else list(self.doc["turnout"]["hours"])

    @property
    def station_states(self) -> Mapping[str, Any] | None:
        return None if self.doc is None else self.doc["stations"]

    def tally(self, contest_id: str, level: str, unit: str) -> Mapping[str, Any] | None:
        """The published unit entry of a contest: {"asu": ..., "manual": ..., "stations"}."""
        return self.tallies.get((contest_id, level, unit))

    def turnout_of(self, level: str, unit: str) -> Mapping[str, Any] | None:
        return self.turnout.get((level, unit))

    @classmethod
    def empty(cls) -> Snapshot:
        return cls(0, None, None, None, None)

    @classmethod
    def of(cls, published: Published | None) -> Snapshot:
        if published is None:
            return cls.empty()
        doc: dict[str, Any] = json.loads(published.text)
        turnout: dict[Key, Mapping[str, Any]] = {}
        for level in LEVELS:
            for entry in doc["turnout"].get(level, []):
                turnout[(level, entry["id"])] = entry
        tallies: dict[tuple[str, str, str], Mapping[str, Any]] = {}
        outcomes: dict[str, Mapping[str, Any]] = {}
        for contest in doc["contests"]:
            outcomes[contest["id"]] = contest["outcome"]
            for level, entries in contest["units"].items():
                for entry in entries:
                    tallies[(contest["id"], level, entry["id"])] = entry
        return cls(
            version=published.version,
            published_at=published.published_at,
            sha256=published.sha256,
            text=published.text,
            doc=doc,
            turnout=turnout,
            tallies=tallies,
            outcomes=outcomes,
        )


def shown_source(entry: Mapping[str, Any] | None) -> str | None:
    """Which source a one-line summary (map, children table) shows for a unit: the final
    manual count once it covers every station of the unit, else the preliminary ASU
    count once any station is in, else none."""
    if entry is None:
        return None
    manual, asu = entry.get("manual"), entry.get("asu")
    if manual and manual["stations"] and manual["stations"] == entry["stations"]:
        return "manual"
    if asu and asu["stations"]:
        return "asu"
    return None


def leader(part: Mapping[str, Any] | None) -> tuple[str, str] | None:
    """The option with the largest published share (None: no votes or a tie for first)."""
    if not part:
        return None
    percent: Mapping[str, str] = part["shares"]["percent"]
    votes: Mapping[str, int] = part["votes"]
    ranked = sorted(votes.items(), key=lambda kv: -kv[1])
    if not ranked or ranked[0][1] == 0 or (len(ranked) > 1 and ranked[0][1] == ranked[1][1]):
        return None
    option = ranked[0][0]
    return option, percent.get(option, "")
