"""The server room's watch: alerts for conditions that are problems only once they last.

The central server runs `watch_once` every few seconds (central/server.py) on real
time:

- `gap`: a station's stored sequence has a hole (`stations.last_seq >
  stations.complete_to`) and the oldest stored message above it arrived at least
  `grace` (60 s) ago.  Two ingest workers on a shared subscription routinely store a
  station's later message a moment before its earlier one; such a hole closes within
  a second and is no alert.  The ingest (central/evidence.py) advances `complete_to`
  and resolves the alert as soon as the holes it names change or are filled; while a
  hole lasts, one open alert names the missing seqs.
- `not_delivered`: a station's final reports are not all in 2 h after polls close
  (the ingest resolves it when they arrive).

Both read first and take the write lock (and the stations' row locks, in the ingest's
order) only when there is an alert to raise, then check again under the lock: an
ingest batch filling the hole or delivering the station at that moment either
commits first (nothing is raised) or after (and resolves what was raised).
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from central.alerts import evidence_of, open_alerts, raise_alert, resolve_alerts, timestamp
from central.db import Database, Tx
from central.evidence import lock_stations
from central.report_bodies import DELIVERED
from election.definition import ElectionDefinition

GAP_GRACE = dt.timedelta(seconds=60)
# The write lock is the ingest's.  A round that raised ~2,000 gaps in one transaction (a
# 2,500-station day with the CEC behind) held it for over 45 s, sharing the GIL with the
# publisher's build: the ingest workers missed their MQTT keepalives, the broker dropped
# them, and the holes grew.  So each raise is its own short transaction, a round raises
# at most this many gaps, and not_delivered is raised in chunks of this size.
RAISES_PER_ROUND = 20
NOT_DELIVERED_GRACE = dt.timedelta(hours=2)


def watch_once(
    db: Database,
    definition: ElectionDefinition,
    now: dt.datetime,
    *,
    gap_grace: dt.timedelta = GAP_GRACE,
) -> None:
    """One round of the watch: `check_gaps`, then `check_not_delivered`.  Each runs even
    if the other fails; failures are raised together afterwards."""
    failed: list[Exception] = []
    for check in (
        lambda: check_gaps(db, now, gap_grace),
        lambda: check_not_delivered(db, definition, now),
    ):
        try:
            check()
        except Exception as e:  # the other check still runs
            failed.append(e)
    if failed:
        raise ExceptionGroup("the watch", failed)


def check_gaps(db: Database, now: dt.datetime, grace: dt.timedelta = GAP_GRACE) -> list[int]:
    """Keep one open `gap` alert per station whose hole has lasted `grace` (the oldest
    stored message above `complete_to` was received at least `grace` before `now`),
    naming the missing seqs; replaced when they change.  Returns the ids of the open
    alerts describing such holes (already open ones included)."""
    cutoff = timestamp(now - grace)
    ids: list[int] = []
    due: list[str] = []
    with db.snapshot() as q:
        for sid in _lasting_holes(q, cutoff):
            detail, _ = _gap(q, sid)
            same = [a.id for a in open_alerts(q, kind="gap", station_id=sid) if a.detail == detail]
            if same:
                ids.append(same[0])
            else:
                due.append(sid)
    # the write lock only when there is an alert to raise, one short transaction per
    # station and at most RAISES_PER_ROUND of them (the rest in the next rounds)
    for sid in due[:RAISES_PER_ROUND]:
        with db.transaction() as tx:
            lock_stations(db, tx, [sid])
            if not _lasting_holes(tx, cutoff, [sid]):  # again, under the lock
                continue
            detail, evidence = _gap(tx, sid)
            same = [a.id for a in open_alerts(tx, kind="gap", station_id=sid) if a.detail == detail]
            if same:
                ids.append(same[0])
                continue
            resolve_alerts(tx, kind="gap", station_id=sid, at=now, keep_detail=detail)
            ids.append(
                raise_alert(
                    tx,
                    kind="gap",
                    severity="medium",
                    station_id=sid,
                    detail=detail,
                    evidence=[evidence],
                    at=now,
                )
            )
    return ids


def check_not_delivered(
    db: Database,
    definition: ElectionDefinition,
    now: dt.datetime,
    grace: dt.timedelta = NOT_DELIVERED_GRACE,
) -> list[int]:
    """Raise `not_delivered` for every station whose final reports are not all in
    `grace` after polls close (resolved when they arrive).  Returns the alert ids (of
    every such station's open alert: an open one is not raised again)."""
    tz = ZoneInfo(definition.timezone)
    close = dt.datetime.combine(
        definition.date, dt.time.fromisoformat(definition.polls_close), tzinfo=tz
    )
    if now < close + grace:
        return []
    late = db.query(
        "SELECT s.station_id, a.id FROM stations s LEFT JOIN alerts a ON a.station_id ="
        " s.station_id AND a.kind = 'not_delivered' AND a.resolved_at IS NULL"
        " WHERE s.state <> ? ORDER BY s.station_id",
        (DELIVERED,),
    )
    ids = {r["station_id"]: int(r["id"]) for r in late if r["id"] is not None}
    due = sorted({r["station_id"] for r in late} - set(ids))
    for i in range(0, len(due), RAISES_PER_ROUND):  # the write lock only to raise, in chunks
        with db.transaction() as tx:
            for r in lock_stations(db, tx, due[i : i + RAISES_PER_ROUND]).values():
                if r["state"] == DELIVERED:  # delivered meanwhile
                    continue
                ids[r["station_id"]] = raise_alert(
                    tx,
                    kind="not_delivered",
                    severity="medium",
                    station_id=r["station_id"],
                    detail=f"station {r['number']} has not delivered both final reports "
                    f"{_hours(grace)} after polls closed",
                    evidence=[{"station": r["station_id"], "state": r["state"]}],
                    at=now,
                )
    return [ids[sid] for sid in sorted(ids)]


def _lasting_holes(q: Tx, cutoff: str, only: list[str] | None = None) -> list[str]:
    """Stations with a hole whose oldest stored message above it was received by `cutoff`.

    A scan of the stations, then per station with a hole (a few) an index range of its
    messages: never a scan of the messages every few seconds, and no query whose cost
    estimate would wake PostgreSQL's JIT compiler (seconds per call)."""
    sql = "SELECT station_id, complete_to FROM stations WHERE last_seq > complete_to"
    params: list[object] = []
    if only is not None:
        sql += f" AND station_id IN ({', '.join('?' * len(only))})"
        params += only
    out = []
    for r in q.query(sql + " ORDER BY station_id", params):
        oldest = q.one(
            "SELECT MIN(received_at) AS at FROM messages WHERE station_id = ? AND seq > ?",
            (r["station_id"], r["complete_to"]),
        )
        if oldest is not None and oldest["at"] is not None and oldest["at"] <= cutoff:
            out.append(r["station_id"])
    return out


def _gap(q: Tx, sid: str) -> tuple[str, dict[str, object]]:
    """The gap alert's detail for a station with a hole, and its evidence: the stored
    message with the highest seq."""
    row = q.one("SELECT number, complete_to FROM stations WHERE station_id = ?", (sid,))
    assert row is not None
    above = q.query(
        "SELECT seq, hash FROM messages WHERE station_id = ? AND seq > ? ORDER BY seq",
        (sid, row["complete_to"]),
    )
    holes = _holes(int(row["complete_to"]), [int(r["seq"]) for r in above])
    detail = (
        f"station {row['number']}: messages {holes} have not arrived "
        "(later ones have): stored and counted, the hole is watched"
    )
    return detail, evidence_of(sid, int(above[-1]["seq"]), above[-1]["hash"])


def _holes(start: int, present_above: list[int]) -> str:
    """ "3-4, 7" for the seqs missing between start and the highest present one."""
    ranges: list[str] = []
    prev = start
    for s in present_above:
        if s > prev + 1:
            a, b = prev + 1, s - 1
            ranges.append(str(a) if a == b else f"{a}-{b}")
        prev = s
    if len(ranges) > 10:
        ranges = ranges[:10] + [f"and {len(ranges) - 10} more ranges"]
    return ", ".join(ranges)


def _hours(d: dt.timedelta) -> str:
    minutes = int(d.total_seconds()) // 60
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes % 60 else f"{minutes // 60} h"
