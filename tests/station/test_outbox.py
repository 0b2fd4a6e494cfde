"""The outbox is the messages table: unacked in order, acked only for the stored hash, durable."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from crypto import keys
from station.outbox import Outbox
from station.signer import Signer
from station.store import Store
from tests.support.clock import BISHKEK, FakeClock

ELECTION = "cd" * 32


def _signer(store: Store, clock: FakeClock) -> Signer:
    return Signer(store, keys.generate_signing_key(), election_hash=ELECTION,
                  station_id="1001", device_id="dev-1001", clock=clock)  # fmt: skip


def test_pending_lists_unacked_messages_in_signing_order_with_their_exact_bytes(
    tmp_path: Path,
) -> None:
    clock = FakeClock(dt.datetime(2026, 11, 29, 20, 0, tzinfo=BISHKEK))
    store = Store(tmp_path / "s.sqlite")
    signer = _signer(store, clock)
    envs = [signer.sign(k, {"n": i}) for i, k in enumerate(["asu_report", "turnout", "final"])]
    outbox = Outbox(store, clock)
    pending = outbox.pending()
    assert [m.seq for m in pending] == [0, 1, 2]
    assert [m.body for m in pending] == [e.to_bytes() for e in envs]
    assert [m.hash for m in pending] == [e.hash for e in envs]
    assert [m.seq for m in outbox.pending(after_seq=0)] == [1, 2]


def test_ack_with_the_wrong_hash_acknowledges_nothing(tmp_path: Path) -> None:
    clock = FakeClock(dt.datetime(2026, 11, 29, 20, 0, tzinfo=BISHKEK))
    store = Store(tmp_path / "s.sqlite")
    env = _signer(store, clock).sign("asu_report", {})
    outbox = Outbox(store, clock)
    assert not outbox.mark_acked(env.seq, "0" * 64)
    assert not outbox.mark_acked(env.seq + 1, env.hash)
    assert outbox.pending_count() == 1
    assert outbox.mark_acked(env.seq, env.hash)
    assert not outbox.mark_acked(env.seq, env.hash)  # a duplicate ack changes nothing
    assert outbox.pending() == []
    assert outbox.acked_at(env.seq) == clock().astimezone(dt.UTC)


def test_acknowledgement_survives_reopening_the_database(tmp_path: Path) -> None:
    clock = FakeClock(dt.datetime(2026, 11, 29, 20, 0, tzinfo=BISHKEK))
    store = Store(tmp_path / "s.sqlite")
    signer = _signer(store, clock)
    first, second = signer.sign("a", {}), signer.sign("b", {})
    Outbox(store, clock).mark_acked(first.seq, first.hash)
    store.close()
    reopened = Outbox(Store(tmp_path / "s.sqlite"), clock)
    assert [(m.seq, m.hash) for m in reopened.pending()] == [(second.seq, second.hash)]
