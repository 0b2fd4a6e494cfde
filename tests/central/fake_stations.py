"""Signed station messages for the central bookkeeping tests, without provisioning.

A tiny election with every contest kind (party list, two single-member districts,
president, referendum) over 2 regions, 3 districts, 4 commissions and 6 stations,
and `FakeStation`, which signs real Ed25519 envelopes chained exactly as
station/signer.py chains them, with bodies shaped as station/count.py and
station/reports.py write them.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from crypto.envelope import GENESIS_PREV, Envelope, format_time, sign_envelope
from election.definition import (
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
from election.tally import ContestTally

TZ = ZoneInfo("Asia/Bishkek")
DAY = dt.date(2026, 11, 29)
KEY = Ed25519PrivateKey.generate()
RECEIVED = dt.datetime(2026, 11, 29, 14, 0, tzinfo=dt.UTC)

Item = tuple[Envelope, bytes, dt.datetime]


def _n(text: str) -> Names:
    return Names(ky=text, ru=text, en=text)


def _station(number: int, commission: str, registered: int) -> Station:
    return Station(
        id=f"uik-{number}",
        number=number,
        commission_id=commission,
        name=_n(f"Station {number}"),
        address=_n(f"Street {number}"),
        lat="42.87000",
        lon="74.59000",
        registered_voters=registered,
    )


def _party(pid: str, n: int) -> Option:
    return Option(
        id=pid,
        kind=OptionKind.PARTY,
        name=_n(pid),
        candidates=tuple(
            Candidate(
                id=f"{pid}-c{i}",
                name=_n(f"{pid} {i}"),
                gender=Gender.FEMALE if i % 3 == 0 else Gender.MALE,
                position=i,
            )
            for i in range(1, n + 1)
        ),
    )


def _candidate(cid: str, gender: Gender = Gender.MALE) -> Option:
    return Option(id=cid, kind=OptionKind.CANDIDATE, name=_n(cid), gender=gender)


AGAINST_ALL = Option(id="against-all", kind=OptionKind.AGAINST_ALL, name=_n("against all"))


def tiny_definition(registered: int = 1000, election_id: str = "kg-test") -> ElectionDefinition:
    """2 regions > 3 districts > 4 commissions > 6 stations; every contest kind."""
    return ElectionDefinition(
        id=election_id,
        name=_n("Test election"),
        date=DAY,
        regions=(
            Region(id="north", kind=RegionKind.OBLAST, name=_n("North")),
            Region(id="south", kind=RegionKind.OBLAST, name=_n("South")),
        ),
        districts=(
            District(id="d1", region_id="north", name=_n("D1")),
            District(id="d2", region_id="north", name=_n("D2")),
            District(id="d3", region_id="south", name=_n("D3")),
        ),
        commissions=(
            Commission(id="c1", district_id="d1", name=_n("C1")),
            Commission(id="c2", district_id="d1", name=_n("C2")),
            Commission(id="c3", district_id="d2", name=_n("C3")),
            Commission(id="c4", district_id="d3", name=_n("C4")),
        ),
        stations=(
            _station(101, "c1", registered),
            _station(102, "c1", registered),
            _station(103, "c2", registered),
            _station(201, "c3", registered),
            _station(301, "c4", registered),
            _station(302, "c4", registered),
        ),
        contests=(
            Contest(
                id="list",
                kind=ContestKind.PARTY_LIST,
                name=_n("Party list"),
                options=(_party("pa", 6), _party("pb", 6), _party("pc", 6), AGAINST_ALL),
                rules=PartyListRules(seats=10),
            ),
            Contest(
                id="smd-1",
                kind=ContestKind.SINGLE_MEMBER,
                name=_n("District 1"),
                district_id="d1",
                options=(_candidate("x1"), _candidate("x2"), _candidate("x3"), AGAINST_ALL),
                rules=PluralityRules(),
            ),
            Contest(
                id="smd-3",
                kind=ContestKind.SINGLE_MEMBER,
                name=_n("District 3"),
                district_id="d3",
                options=(_candidate("y1"), _candidate("y2"), AGAINST_ALL),
                rules=PluralityRules(),
            ),
            Contest(
                id="president",
                kind=ContestKind.PRESIDENT,
                name=_n("President"),
                options=(
                    _candidate("p1"),
                    _candidate("p2", Gender.FEMALE),
                    _candidate("p3"),
                    AGAINST_ALL,
                ),
                rules=MajorityRules(),
            ),
            Contest(
                id="referendum",
                kind=ContestKind.REFERENDUM,
                name=_n("Referendum"),
                options=(
                    Option(id="yes", kind=OptionKind.YES, name=_n("yes")),
                    Option(id="no", kind=OptionKind.NO, name=_n("no")),
                ),
                rules=ReferendumRules(),
            ),
        ),
    )


def tally(
    contest: Contest,
    votes: dict[str, int],
    invalid: int = 0,
    prefs: dict[str, int] | None = None,
) -> ContestTally:
    """A consistent tally: the given votes (others 0), invalid as blank ballots."""
    return ContestTally(
        contest_id=contest.id,
        ballots=sum(votes.values()) + invalid,
        invalid=invalid,
        invalid_by_reason={"blank": invalid} if invalid else {},
        votes={o.id: votes.get(o.id, 0) for o in contest.options},
        preferences={
            c.id: (prefs or {}).get(c.id, 0) for o in contest.options for c in o.candidates
        },
    )


def random_tally(contest: Contest, rng: random.Random, ballots: int) -> ContestTally:
    """Random but consistent: ballots split over the options and invalid, with reasons
    sometimes given and sometimes not, preferences within each party's votes."""
    invalid = rng.randint(0, ballots // 10)
    rest = ballots - invalid
    votes = dict.fromkeys((o.id for o in contest.options), 0)
    for _ in range(rest):
        votes[rng.choice(contest.options).id] += 1
    prefs = {}
    for o in contest.options:
        left = votes[o.id]
        for c in o.candidates:
            prefs[c.id] = rng.randint(0, left // 3)
            left -= prefs[c.id]
    reasons: dict[str, int] = {}
    if invalid and rng.random() < 0.7:
        blank = rng.randint(0, invalid)
        reasons = {k: v for k, v in (("blank", blank), ("overvote", invalid - blank)) if v}
    return ContestTally(
        contest_id=contest.id,
        ballots=ballots,
        invalid=invalid,
        invalid_by_reason=reasons,
        votes=votes,
        preferences=prefs,
    )


class FakeStation:
    """One station's device: signs seq 0, 1, 2, ... each chained to the one before."""

    def __init__(
        self,
        definition: ElectionDefinition,
        station_id: str,
        *,
        key: Ed25519PrivateKey = KEY,
        at: dt.datetime = dt.datetime(2026, 11, 29, 7, 55, tzinfo=TZ),
    ) -> None:
        self.definition = definition
        self.station = definition.station(station_id)
        self.station_id = station_id
        self.key = key
        self.device = f"dev-{self.station.number}"
        self.seq = 0
        self.prev = GENESIS_PREV
        self.clock = at
        self.contests = definition.contests_for_station(station_id)

    def at(self, hh: int, mm: int = 0) -> FakeStation:
        """Set the station's clock (local time on election day)."""
        self.clock = dt.datetime.combine(DAY, dt.time(hh, mm), tzinfo=TZ)
        return self

    def sign(self, kind: str, body: dict[str, Any], *, prev: str | None = None) -> Envelope:
        env = sign_envelope(
            self.key,
            kind=kind,
            election=self.definition.election_hash,
            station=self.station_id,
            device=self.device,
            seq=self.seq,
            prev=self.prev if prev is None else prev,
            time=format_time(self.clock),
            body=body,
        )
        self.seq += 1
        self.prev = env.hash
        return env

    # --- the bodies a station sends -------------------------------------------------------

    def zero_report(self, *, mode: str = "live") -> Envelope:
        zeros = [ContestTally.zero(c) for c in self.contests]
        return self.sign("asu_report", _asu_body("zero", mode, zeros))

    def final_report(
        self,
        tallies: list[ContestTally] | None = None,
        *,
        mode: str = "live",
        voters_identified: int | None = None,
        problems: list[str] | None = None,
        deferred: list[ContestTally] | None = None,
    ) -> Envelope:
        """`deferred`: the part of `tallies` counted in a deferred batch (a spare box's)."""
        tallies = tallies if tallies is not None else self.tallies(random.Random(1), 100)
        body = _asu_body("final", mode, tallies)
        if deferred is not None:
            body["deferred_sheets"] = max((t.ballots for t in deferred), default=0)
            body["deferred_tallies"] = [t.to_obj() for t in deferred]
        body["voters_identified"] = (
            voters_identified if voters_identified is not None else body["sheets"]
        )
        body["problems"] = problems or []
        return self.sign("asu_report", body)

    def tallies(self, rng: random.Random, ballots: int) -> list[ContestTally]:
        return [random_tally(c, rng, ballots) for c in self.contests]

    def ident_report(
        self,
        phase: str,
        by_hour: dict[str, int] | None = None,
        *,
        mode: str = "live",
        face_share: tuple[int, int] = (9, 10),
    ) -> Envelope:
        by_hour = dict(sorted((by_hour or {}).items()))
        voted = sum(by_hour.values())
        face = voted * face_share[0] // face_share[1]
        mobile = min(2, voted - face)
        document = voted - face - mobile
        body = {
            "phase": phase,
            "mode": mode,
            "as_of": self.clock.isoformat(timespec="seconds"),
            "registered": self.station.registered_voters,
            "voted": voted,
            "identified_by_face": face,
            "admitted_by_document": document,
            "admitted_by_document_by_reason": {"face_mismatch": document},
            "mobile_box": mobile,
            "awaiting_confirmation": 0,
            "cancelled": 0,
            "refused": {"not_on_roll": 0},
            "by_hour": by_hour,
            "mobile_list": 3,
        }
        return self.sign("identification_report", body)

    def turnout(self, voted: int, *, mode: str = "live") -> Envelope:
        return self.sign(
            "turnout",
            {
                "mode": mode,
                "as_of": self.clock.isoformat(timespec="seconds"),
                "registered": self.station.registered_voters,
                "voted": voted,
            },
        )

    def heartbeat(
        self,
        *,
        state: str = "open",
        mode: str = "live",
        voted: int | None = None,
        battery: int = 80,
    ) -> Envelope:
        body: dict[str, Any] = {
            "state": state,
            "mode": mode,
            "battery_percent": battery,
            "on_mains": True,
            "signal_dbm": -71,
            "outbox_pending": 0,
            "sheets": 0,
            "software": "shailoo-test",
            "log_head": {"seq": 3, "hash": "0" * 64},
        }
        if voted is not None:
            body["voted"] = voted
        return self.sign("heartbeat", body)


def _asu_body(phase: str, mode: str, tallies: list[ContestTally]) -> dict[str, Any]:
    return {
        "phase": phase,
        "mode": mode,
        "sheets": max((t.ballots for t in tallies), default=0),
        "deferred_sheets": 0,
        "returned": {},
        "tallies": [t.to_obj() for t in tallies],
        "deferred_tallies": [],
    }


def item(env: Envelope, received: dt.datetime = RECEIVED) -> Item:
    """What the ingest hands to accept_batch: the envelope, its wire bytes, when it came."""
    return env, env.to_bytes(), received


def items(*envs: Envelope, received: dt.datetime = RECEIVED) -> list[Item]:
    return [item(e, received) for e in envs]
