"""The signer: each message chained to the previous one; the newest of a kind and its time."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from crypto import keys
from crypto.envelope import GENESIS_PREV
from station.signer import Signer
from station.store import Store
from tests.support.clock import BISHKEK, FakeClock


def test_messages_are_chained_and_the_newest_of_a_kind_has_its_signing_time(
    tmp_path: Path,
) -> None:
    clock = FakeClock(dt.datetime(2026, 11, 29, 8, 0, 30, 999, tzinfo=BISHKEK))
    signer = Signer(Store(tmp_path / "s.sqlite"), keys.generate_signing_key(),
                    election_hash="cd" * 32, station_id="1001", device_id="dev-1001",
                    clock=clock)  # fmt: skip
    assert signer.last("heartbeat") is None and signer.last_time("heartbeat") is None
    signed = []
    for minutes, kind in [(0, "heartbeat"), (7, "turnout"), (3, "heartbeat"), (3, "turnout")]:
        clock.advance(minutes=minutes)
        signed.append(signer.sign(kind, {"n": minutes}))
    assert [e.seq for e in signed] == [0, 1, 2, 3]
    assert [e.prev for e in signed] == [GENESIS_PREV] + [e.hash for e in signed[:-1]]
    newest = signer.last("heartbeat")
    assert newest is not None and newest.body == {"n": 3} and newest.seq == 2
    # whole seconds, as signed, with the station's offset
    assert signer.last_time("heartbeat") == dt.datetime(2026, 11, 29, 8, 10, 30, tzinfo=BISHKEK)
    assert signer.last_time("heartbeat") == newest.when
    assert signer.last_time("turnout") == dt.datetime(2026, 11, 29, 8, 13, 30, tzinfo=BISHKEK)
    assert signer.last_time("log_digest") is None
