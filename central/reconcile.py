"""Reconciliation: each station's manual count checked against its ASU count.

By law the manual count is final; the ASU (automatic ballot box) count is the reference
it is checked against.  For every contest of a station that has both, every line
(ballots, invalid, each option's votes, each candidate's preference votes) is compared.
A difference is tolerated when it is small in votes OR small as a share of the ballots
(the ASU and people disagree on a few marginal marks at any station); an alert
``asu_manual_difference`` is raised when it is above BOTH limits, with both tallies as
evidence.

The latest comparison of each (station, contest) is kept in `reconciliations` with a
fingerprint of the two tallies compared, so re-running over unchanged numbers raises no
second alert, and a new ASU report or a corrected protocol is compared afresh (the
alert about the numbers it replaces is resolved: it no longer describes the station).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from enum import StrEnum
from fractions import Fraction

from central import aggregate, alerts
from central.db import Database, Tx
from election.canonical import canonical_json
from election.definition import Contest, ElectionDefinition
from election.tally import ContestTally

ALERT_KIND = "asu_manual_difference"
ALERT_SEVERITY = "critical"  # the final count and the machine disagree beyond tolerance


@dataclass(frozen=True)
class Thresholds:
    """How far the ASU may be from the manual count before someone must look.

    A line's difference raises an alert only if it is more than `max_abs` votes and
    more than `max_percent` percent of the contest's (manual) ballots.
    """

    max_abs: int = 2
    max_percent: Fraction = Fraction(1)

    def __post_init__(self) -> None:
        if self.max_abs < 0 or self.max_percent < 0:
            raise ValueError("thresholds cannot be negative")
        object.__setattr__(self, "max_percent", Fraction(self.max_percent))

    def exceeded(self, difference: int, ballots: int) -> bool:
        d = abs(difference)
        return d > self.max_abs and d * 100 > self.max_percent * ballots

    def to_obj(self) -> dict[str, object]:
        p = self.max_percent
        return {
            "max_abs": self.max_abs,
            "max_percent": str(p.numerator) if p.denominator == 1 else f"{p}",
        }


class Status(StrEnum):
    MATCH = "match"  # every line equal
    WITHIN = "within"  # differences, all within the thresholds
    DIFFERENCE = "difference"  # some line above the thresholds: an alert was raised
    NO_ASU = "no_asu"  # a manual count but no ASU count (yet) to compare with


@dataclass(frozen=True)
class LineDiff:
    """One compared line that differs: what the ASU said and what people counted."""

    line: str  # "ballots" | "invalid" | "votes" | "preference"
    id: str | None  # the option or candidate id for votes / preference
    asu: int
    manual: int
    exceeded: bool

    @property
    def difference(self) -> int:
        return self.manual - self.asu

    def to_obj(self) -> dict[str, object]:
        return {
            "line": self.line,
            "id": self.id,
            "asu": self.asu,
            "manual": self.manual,
            "difference": self.difference,
            "exceeded": self.exceeded,
        }


@dataclass(frozen=True)
class Reconciliation:
    station_id: str
    contest_id: str
    status: Status
    lines: tuple[LineDiff, ...] = ()
    alert_id: int | None = None
    checked_at: str = ""
    max_difference: int = field(default=0)


def compare(
    contest: Contest, asu: ContestTally, manual: ContestTally, thresholds: Thresholds
) -> list[LineDiff]:
    """The lines where the two tallies differ, in ballot order, each marked if above limits."""
    base = manual.ballots
    pairs: list[tuple[str, str | None, int, int]] = [
        ("ballots", None, asu.ballots, manual.ballots),
        ("invalid", None, asu.invalid, manual.invalid),
    ]
    for o in contest.options:
        pairs.append(("votes", o.id, asu.votes.get(o.id, 0), manual.votes.get(o.id, 0)))
    for o in contest.options:
        for c in o.candidates:
            pairs.append(
                ("preference", c.id, asu.preferences.get(c.id, 0), manual.preferences.get(c.id, 0))
            )
    return [
        LineDiff(line, id_, a, m, thresholds.exceeded(m - a, base))
        for line, id_, a, m in pairs
        if a != m
    ]


def reconcile_station(
    tx: Tx,
    definition: ElectionDefinition,
    station_id: str,
    thresholds: Thresholds,
    at: dt.datetime,
) -> list[Reconciliation]:
    """Compare every contest of a station that has a manual count; alert on new differences."""
    out = []
    number = definition.station(station_id).number
    for contest in definition.contests_for_station(station_id):
        manual = aggregate.station_tally(tx, station_id, contest.id, "manual")
        if manual is None:
            continue
        asu = aggregate.station_tally(tx, station_id, contest.id, "asu")
        out.append(_reconcile_contest(tx, station_id, number, contest, asu, manual, thresholds, at))
    return out


def _reconcile_contest(
    tx: Tx,
    station_id: str,
    station_number: int,
    contest: Contest,
    asu: ContestTally | None,
    manual: ContestTally,
    thresholds: Thresholds,
    at: dt.datetime,
) -> Reconciliation:
    lines = compare(contest, asu, manual, thresholds) if asu is not None else []
    if asu is None:
        status = Status.NO_ASU
    elif any(x.exceeded for x in lines):
        status = Status.DIFFERENCE
    elif lines:
        status = Status.WITHIN
    else:
        status = Status.MATCH
    fingerprint = hashlib.sha256(
        canonical_json(
            {
                "asu": asu.to_obj() if asu is not None else None,
                "manual": manual.to_obj(),
                "thresholds": thresholds.to_obj(),
            }
        )
    ).hexdigest()
    prior = tx.one(
        "SELECT fingerprint, alert_id FROM reconciliations WHERE station_id = ? AND contest_id = ?",
        (station_id, contest.id),
    )
    alert_id: int | None = None
    if prior is not None and prior["fingerprint"] == fingerprint:
        alert_id = prior["alert_id"]  # compared before: no second alert
    else:
        if prior is not None and prior["alert_id"] is not None:
            # the numbers that alert was about are no longer the current ones
            alerts.resolve_alert(tx, int(prior["alert_id"]), at)
        if status is Status.DIFFERENCE:
            assert asu is not None
            alert_id = alerts.raise_alert(
                tx,
                kind=ALERT_KIND,
                severity=ALERT_SEVERITY,
                station_id=station_id,
                detail=_detail(station_number, contest, lines),
                evidence=_evidence(tx, station_id, contest, asu, manual, lines, thresholds),
                at=at,
                key=f"reconcile:{contest.id}:{fingerprint}",
            )
    biggest = max((abs(x.difference) for x in lines), default=0)
    stamp = at.astimezone(dt.UTC).isoformat(timespec="seconds")
    lines_json = json.dumps([x.to_obj() for x in lines], ensure_ascii=False)
    if prior is None:
        tx.execute(
            "INSERT INTO reconciliations (station_id, contest_id, status, max_difference, "
            "lines, fingerprint, alert_id, checked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                station_id,
                contest.id,
                status.value,
                biggest,
                lines_json,
                fingerprint,
                alert_id,
                stamp,
            ),
        )
    else:
        tx.execute(
            "UPDATE reconciliations SET status = ?, max_difference = ?, lines = ?, "
            "fingerprint = ?, alert_id = ?, checked_at = ? WHERE station_id = ? "
            "AND contest_id = ?",
            (
                status.value,
                biggest,
                lines_json,
                fingerprint,
                alert_id,
                stamp,
                station_id,
                contest.id,
            ),
        )
    return Reconciliation(station_id, contest.id, status, tuple(lines), alert_id, stamp, biggest)


def _detail(number: int, contest: Contest, lines: list[LineDiff]) -> str:
    worst = max((x for x in lines if x.exceeded), key=lambda x: abs(x.difference))
    what = worst.line if worst.id is None else f"{worst.line} {worst.id}"
    return (
        f"station {number}, contest {contest.id}: the manual count differs from the ASU "
        f"beyond the limits on {sum(x.exceeded for x in lines)} line(s); largest: {what} "
        f"ASU {worst.asu}, manual {worst.manual}"
    )


def _evidence(
    tx: Tx,
    station_id: str,
    contest: Contest,
    asu: ContestTally,
    manual: ContestTally,
    lines: list[LineDiff],
    thresholds: Thresholds,
) -> list[dict[str, object]]:
    """The signed ASU report compared, the protocol version compared, and both numbers."""
    out: list[dict[str, object]] = []
    station = tx.one("SELECT asu_seq, asu_hash FROM stations WHERE station_id = ?", (station_id,))
    if station is not None and station["asu_seq"] is not None:
        out.append(alerts.evidence_of(station_id, station["asu_seq"], station["asu_hash"]))
    protocol = tx.one(
        "SELECT version, scan_sha256 FROM manual_protocols WHERE station_id = ? "
        "AND superseded_at IS NULL",
        (station_id,),
    )
    if protocol is not None:
        out.append(
            {
                "manual_protocol": {
                    "station": station_id,
                    "version": protocol["version"],
                    "scan_sha256": protocol["scan_sha256"],
                }
            }
        )
    out.append(
        {
            "comparison": {
                "contest_id": contest.id,
                "thresholds": thresholds.to_obj(),
                "differences": [x.to_obj() for x in lines],
                "asu": asu.to_obj(),
                "manual": manual.to_obj(),
            }
        }
    )
    return out


def reconcile_all(
    db: Database, definition: ElectionDefinition, thresholds: Thresholds, at: dt.datetime
) -> int:
    """Re-check every station with a manual protocol (an ASU report may have come since).

    One transaction per station, so a long run never holds the database for long.
    Returns the number of stations checked.
    """
    stations = [
        str(r["station_id"])
        for r in db.query(
            "SELECT DISTINCT station_id FROM manual_protocols WHERE superseded_at IS NULL"
        )
    ]
    known = {s.id for s in definition.stations}
    checked = 0
    for station_id in sorted(stations):
        if station_id not in known:
            continue
        with db.transaction() as tx:
            reconcile_station(tx, definition, station_id, thresholds, at)
        checked += 1
    return checked


def listing(
    db: Database | Tx,
    definition: ElectionDefinition,
    *,
    commission_id: str | None = None,
) -> list[Reconciliation]:
    """The latest comparisons for the server room, differences first, then by station number.

    `commission_id` limits it to one commission's stations (what an operator may see).
    """
    rows = db.query("SELECT * FROM reconciliations")
    out = []
    for r in rows:
        try:
            station = definition.station(str(r["station_id"]))
        except KeyError:
            continue
        if commission_id is not None and station.commission_id != commission_id:
            continue
        lines = tuple(
            LineDiff(x["line"], x["id"], x["asu"], x["manual"], x["exceeded"])
            for x in json.loads(str(r["lines"]))
        )
        alert_id = r["alert_id"]
        out.append(
            Reconciliation(
                station_id=station.id,
                contest_id=str(r["contest_id"]),
                status=Status(str(r["status"])),
                lines=lines,
                alert_id=int(alert_id) if alert_id is not None else None,
                checked_at=str(r["checked_at"]),
                max_difference=int(r["max_difference"]),
            )
        )
    order = {Status.DIFFERENCE: 0, Status.NO_ASU: 1, Status.WITHIN: 2, Status.MATCH: 3}
    contest_pos = {c.id: i for i, c in enumerate(definition.contests)}
    out.sort(
        key=lambda x: (
            order[x.status],
            definition.station(x.station_id).number,
            contest_pos.get(x.contest_id, 0),
        )
    )
    return out
