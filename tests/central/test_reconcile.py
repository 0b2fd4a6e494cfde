from __future__ import annotations

import datetime as dt
import json
from fractions import Fraction

import pytest

from central import manual, reconcile
from central.accounts import Account
from central.db import Database
from central.reconcile import Status, Thresholds
from tests.central.staff_support import (
    PDF,
    T0,
    asu_of,
    load,
    operator,
    protocol,
    replace,
    set_asu,
    small_definition,
)

D = small_definition()
S101, S102, S201 = "uik-101", "uik-102", "uik-201"
LIMITS = Thresholds(max_abs=2, max_percent=Fraction(1))


@pytest.fixture
def clerk(db: Database) -> Account:
    load(db, D)
    return operator(db, "tik-a")


def _enter(
    db: Database,
    who: Account,
    station: str = S101,
    shift: int = 0,
    *,
    reason: str = "",
    at: dt.datetime = T0,
) -> None:
    manual.save_protocol(
        db,
        D,
        who,
        station,
        protocol(D, station, shift=shift),
        manual.Scan("application/pdf", PDF),
        reason=reason,
        at=at,
        thresholds=LIMITS,
    )


def _ours(db: Database) -> list[dict[str, object]]:
    """The alerts about differences between the manual and the ASU count."""
    return db.query("SELECT * FROM alerts WHERE kind = 'asu_manual_difference' ORDER BY id")


def _status(db: Database, station: str = S101) -> dict[str, Status]:
    return {r.contest_id: r.status for r in reconcile.listing(db, D) if r.station_id == station}


@pytest.mark.parametrize(
    ("difference", "ballots", "exceeded"),
    [
        (2, 100, False),  # within the absolute limit
        (3, 100, True),  # 3 votes and 3% of 100
        (3, 1000, False),  # 3 votes but only 0.3%
        (11, 1000, True),  # 11 votes, 1.1%
        (10, 1000, False),  # exactly 1% is tolerated
        (-11, 1000, True),  # the direction does not matter
        (3, 0, True),  # no ballots: any count above the absolute limit
    ],
)
def test_a_difference_alerts_only_above_both_limits(
    difference: int, ballots: int, exceeded: bool
) -> None:
    assert LIMITS.exceeded(difference, ballots) is exceeded


def test_no_asu_count_yet_is_listed_as_such_without_alert(db: Database, clerk: Account) -> None:
    _enter(db, clerk)
    assert _status(db) == {"list": Status.NO_ASU, "smd-1": Status.NO_ASU}
    assert _ours(db) == []


def test_an_asu_count_equal_to_the_manual_one_matches(db: Database, clerk: Account) -> None:
    set_asu(db, D, S101, asu_of(D, protocol(D, S101)))
    _enter(db, clerk)
    assert _status(db) == {"list": Status.MATCH, "smd-1": Status.MATCH}
    assert db.query("SELECT * FROM alerts") == []


def test_a_small_difference_is_listed_but_raises_no_reconciliation_alert(
    db: Database, clerk: Account
) -> None:
    # 5 votes moved from p1 to p2 out of 558 ballots: above 2 votes but under 1%
    set_asu(db, D, S101, asu_of(D, protocol(D, S101)))
    _enter(db, clerk, shift=5)
    (row,) = [r for r in reconcile.listing(db, D) if r.contest_id == "list"]
    assert row.status is Status.WITHIN and row.alert_id is None and row.max_difference == 5
    assert {(x.id, x.asu, x.manual) for x in row.lines} == {("p1", 300, 295), ("p2", 200, 205)}
    assert _ours(db) == []


def test_a_difference_above_the_limits_raises_an_alert_with_both_numbers(
    db: Database, clerk: Account
) -> None:
    set_asu(db, D, S101, asu_of(D, protocol(D, S101)))
    _enter(db, clerk, shift=20)  # 20 votes of 558 ballots: 3.6%
    assert _status(db) == {"list": Status.DIFFERENCE, "smd-1": Status.DIFFERENCE}
    alerts = _ours(db)
    assert len(alerts) == 2 and {a["station_id"] for a in alerts} == {S101}
    alert = next(a for a in alerts if "contest list" in str(a["detail"]))
    assert "station 101" in str(alert["detail"])
    evidence = json.loads(str(alert["evidence"]))
    (comparison,) = [e["comparison"] for e in evidence if "comparison" in e]
    assert comparison["thresholds"] == {"max_abs": 2, "max_percent": "1"}
    assert {(d["id"], d["asu"], d["manual"], d["exceeded"]) for d in comparison["differences"]} == {
        ("p1", 300, 280, True),
        ("p2", 200, 220, True),
    }
    assert comparison["asu"]["votes"]["p1"] == 300 and comparison["manual"]["votes"]["p1"] == 280
    (protocol_ref,) = [e["manual_protocol"] for e in evidence if "manual_protocol" in e]
    assert protocol_ref["version"] == 1


def test_running_again_over_the_same_numbers_raises_no_second_alert(
    db: Database, clerk: Account
) -> None:
    set_asu(db, D, S101, asu_of(D, protocol(D, S101)))
    _enter(db, clerk, shift=20)
    before = _ours(db)
    assert reconcile.reconcile_all(db, D, LIMITS, T0 + dt.timedelta(minutes=5)) == 1
    assert _ours(db) == before


def test_an_asu_report_arriving_after_the_manual_count_is_compared_on_the_next_run(
    db: Database, clerk: Account
) -> None:
    _enter(db, clerk)
    asu = asu_of(D, protocol(D, S101))
    asu["list"] = asu["list"].model_copy(
        update={"votes": {**asu["list"].votes, "p1": 250, "against-all": 100}}
    )
    set_asu(db, D, S101, asu)
    reconcile.reconcile_all(db, D, LIMITS, T0 + dt.timedelta(minutes=5))
    assert _status(db) == {"list": Status.DIFFERENCE, "smd-1": Status.MATCH}
    assert len(_ours(db)) == 1


def test_a_correction_that_removes_the_difference_resolves_its_alert(
    db: Database, clerk: Account
) -> None:
    set_asu(db, D, S101, asu_of(D, protocol(D, S101)))
    _enter(db, clerk, shift=20)
    _enter(db, clerk, shift=0, reason="recounted", at=T0 + dt.timedelta(hours=1))
    assert _status(db) == {"list": Status.MATCH, "smd-1": Status.MATCH}
    assert all(a["resolved_at"] is not None for a in _ours(db))


def test_stricter_limits_alert_on_any_difference(db: Database, clerk: Account) -> None:
    set_asu(db, D, S101, asu_of(D, protocol(D, S101)))
    counts = protocol(D, S101)
    counts["list"] = replace(counts["list"], invalid=7, ballots=557, issued=557)
    manual.save_protocol(
        db,
        D,
        clerk,
        S101,
        counts,
        manual.Scan("application/pdf", PDF),
        at=T0,
        thresholds=Thresholds(max_abs=0, max_percent=Fraction(0)),
    )
    (row,) = [r for r in reconcile.listing(db, D) if r.contest_id == "list"]
    assert row.status is Status.DIFFERENCE
    assert {(x.line, x.asu, x.manual) for x in row.lines} == {
        ("ballots", 558, 557),
        ("invalid", 8, 7),
    }


def test_the_listing_puts_differences_first_and_can_keep_to_one_commission(
    db: Database, clerk: Account
) -> None:
    other = operator(db, "tik-b", "clerk-b")
    for station in (S101, S102, S201):
        set_asu(db, D, station, asu_of(D, protocol(D, station)))
    _enter(db, clerk, S101)
    _enter(db, clerk, S102, shift=30)
    _enter(db, other, S201, shift=1)
    rows = reconcile.listing(db, D)
    assert [(r.station_id, r.status) for r in rows][:2] == [
        (S102, Status.DIFFERENCE),
        (S102, Status.DIFFERENCE),
    ]
    assert {r.station_id for r in reconcile.listing(db, D, commission_id="tik-b")} == {S201}
