from __future__ import annotations

import datetime as dt

import pytest

from central.alerts import (
    alerts,
    open_alerts,
    raise_alert,
    resolve_alert,
    resolve_alerts,
    timestamp,
)
from central.db import Database

T0 = dt.datetime(2026, 11, 29, 14, 0, tzinfo=dt.UTC)


def _raise(db: Database, detail: str = "bad signature", **kw: object) -> int:
    args: dict[str, object] = {
        "kind": "forged",
        "severity": "high",
        "station_id": "uik-101",
        "detail": detail,
        "evidence": [{"excerpt": "{...}"}],
        "at": T0,
    }
    args.update(kw)
    with db.transaction() as tx:
        return raise_alert(tx, **args)  # type: ignore[arg-type]


def test_a_repeated_alert_is_counted_on_the_open_one_not_stored_again(db: Database) -> None:
    first = _raise(db, evidence=[{"excerpt": "first"}])
    for i in range(1, 500):
        assert _raise(db, at=T0 + dt.timedelta(seconds=i), evidence=[{"excerpt": "later"}]) == first
    (a,) = alerts(db)
    assert a.repeats == 500
    assert a.evidence == [{"excerpt": "first"}]  # the first raise's evidence stays
    assert a.raised_at == timestamp(T0)
    assert a.last_raised_at == timestamp(T0 + dt.timedelta(seconds=499))


def test_another_detail_station_or_kind_is_another_alert(db: Database) -> None:
    ids = {
        _raise(db),
        _raise(db, detail="other"),
        _raise(db, station_id="uik-102"),
        _raise(db, kind="malformed"),
        _raise(db, station_id=None),
    }
    assert len(ids) == 5
    assert len(open_alerts(db)) == 5


def test_a_dedup_key_groups_alerts_whose_details_differ(db: Database) -> None:
    a = _raise(db, detail="seq 5: hash abc", key="seq 5")
    b = _raise(db, detail="seq 5: hash def", key="seq 5")
    assert a == b
    assert open_alerts(db)[0].detail == "seq 5: hash abc"


def test_a_resolved_alert_raised_again_is_a_new_alert(db: Database) -> None:
    first = _raise(db)
    with db.transaction() as tx:
        assert resolve_alert(tx, first, T0)
        assert not resolve_alert(tx, first, T0)  # already resolved
    second = _raise(db)
    assert second != first
    assert [a.id for a in open_alerts(db)] == [second]
    assert [a.id for a in alerts(db)] == [second, first]


def test_resolve_alerts_closes_one_kind_of_one_station_except_the_detail_kept(
    db: Database,
) -> None:
    _raise(db, kind="gap", detail="messages 3 have not arrived")
    kept = _raise(db, kind="gap", detail="messages 3, 7 have not arrived")
    other_station = _raise(db, kind="gap", station_id="uik-102")
    other_kind = _raise(db)
    with db.transaction() as tx:
        n = resolve_alerts(
            tx,
            kind="gap",
            station_id="uik-101",
            at=T0,
            keep_detail="messages 3, 7 have not arrived",
        )
    assert n == 1
    assert {a.id for a in open_alerts(db)} == {kept, other_station, other_kind}
    assert [a.id for a in open_alerts(db, kind="gap", station_id="uik-101")] == [kept]


def test_unknown_kinds_and_severities_and_naive_times_are_refused(db: Database) -> None:
    with pytest.raises(ValueError, match="unknown alert kind"):
        _raise(db, kind="oops")
    with pytest.raises(ValueError, match="severity"):
        _raise(db, severity="urgent")
    with pytest.raises(ValueError, match="no UTC offset"):
        _raise(db, at=dt.datetime(2026, 11, 29, 14, 0))
    assert alerts(db) == []


def test_times_are_stored_in_utc_so_text_order_is_time_order() -> None:
    local = dt.datetime(2026, 11, 29, 20, 0, tzinfo=dt.timezone(dt.timedelta(hours=6)))
    assert timestamp(local) == "2026-11-29T14:00:00.000+00:00"
    assert timestamp("2026-11-29T20:00:00+06:00") == timestamp(local)
