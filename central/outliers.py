"""Stations whose turnout is far from their region's: a robust, exact rule.

Only stations that have closed (their final identification report is applied) are
compared, and only within a region where at least MIN_STATIONS have, so that the
early part of the evening raises nothing.  A station is an outlier when its turnout
is more than MIN_POINTS percentage points AND more than MADS median absolute
deviations away from the median turnout of its region's closed stations.  Both
limits: a tight region (small MAD) does not flag ordinary 5-point differences,
and a spread-out region does not flag stations within its usual spread.  Exact
fractions, no floats; stations with nobody registered are left out.
"""

from __future__ import annotations

import datetime as dt
from fractions import Fraction
from typing import Any

from central.alerts import evidence_of, open_alerts, raise_alert
from central.db import Tx
from central.report_bodies import FINAL
from election.tally import percent_floor

MIN_STATIONS = 10
MIN_POINTS = 20
MADS = 4


def median(xs: list[Fraction]) -> Fraction:
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def outliers(turnouts: dict[str, Fraction]) -> list[str]:
    """The ids among one region's station turnouts that the rule flags, sorted."""
    if len(turnouts) < MIN_STATIONS:
        return []
    mid = median(list(turnouts.values()))
    mad = median([abs(t - mid) for t in turnouts.values()])
    points = Fraction(MIN_POINTS, 100)
    return sorted(
        sid for sid, t in turnouts.items() if abs(t - mid) > points and abs(t - mid) > MADS * mad
    )


def new_turnout_outliers(tx: Tx) -> bool:
    """Whether `check_turnout_outliers` would raise anything (reads only: the publisher
    asks on a snapshot and takes the write lock only when the answer is yes)."""
    return bool(_newly_flagged(tx))


def check_turnout_outliers(tx: Tx, at: dt.datetime | str) -> list[int]:
    """Raise `turnout_outlier` for each newly flagged station (one still flagged keeps
    its open alert); returns the ids of the alerts raised."""
    ids = []
    for sid, r, turnout, mid, region_id, n in _newly_flagged(tx):
        ids.append(
            raise_alert(
                tx,
                kind="turnout_outlier",
                severity="medium",
                station_id=sid,
                detail=f"station {r['number']}: turnout {percent_floor(turnout)}% "
                f"against a median of {percent_floor(mid)}% over the {n} closed "
                f"stations of region {region_id}",
                evidence=[evidence_of(sid, r["ident_seq"], r["ident_hash"])],
                at=at,
                key="turnout outlier",
            )
        )
    return ids


def _newly_flagged(tx: Tx) -> list[tuple[str, Any, Fraction, Fraction, str, int]]:
    rows = tx.query(
        "SELECT s.station_id, s.number, s.region_id, s.registered, s.ident_seq, s.ident_hash,"
        " t.voted FROM stations s JOIN turnout t ON t.level = 'station' AND t.unit = s.station_id"
        " WHERE s.ident_phase = ? AND s.registered > 0 ORDER BY s.station_id",
        (FINAL,),
    )
    by_region: dict[str, dict[str, Fraction]] = {}
    info = {}
    for r in rows:
        by_region.setdefault(r["region_id"], {})[r["station_id"]] = Fraction(
            int(r["voted"]), int(r["registered"])
        )
        info[r["station_id"]] = r
    already = {a.station_id for a in open_alerts(tx, kind="turnout_outlier", limit=100_000)}
    out = []
    for region_id, turnouts in sorted(by_region.items()):
        flagged = outliers(turnouts)
        if not flagged:
            continue
        mid = median(list(turnouts.values()))
        for sid in flagged:
            if sid not in already:
                out.append((sid, info[sid], turnouts[sid], mid, region_id, len(turnouts)))
    return out
