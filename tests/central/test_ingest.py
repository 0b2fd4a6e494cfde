"""The ingest worker against a real Mosquitto with the production config, real stations'
uplinks and both databases: verified, stored, then acknowledged; refusals never stop it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from central.db import open_database
from central.ingest import IngestWorker
from central.kit import CentralKit
from central.mosquitto import Broker
from station.appliance import Appliance
from station.uplink import Uplink
from tests.support.clock import election_day
from tests.support.provisioned import Provisioned
from tests.support.signed import DeviceSigner, station_client
from tests.support.station import CHAIR_CODE, StationKit
from tests.support.wait import wait_until

AT = dt.datetime(2026, 11, 29, 15, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def kit(provisioned: Provisioned) -> StationKit:
    """A real station (the last one: other tests sign as the first ones)."""
    return StationKit(provisioned, provisioned.definition.stations[-1].number)


@pytest.fixture
def central_kit(provisioned: Provisioned) -> CentralKit:
    return provisioned.central_kit()


@pytest.fixture
def workers(central_kit: CentralKit, broker: Broker, db_url: str) -> Iterator[list[IngestWorker]]:
    started: list[IngestWorker] = []

    def start(n: int = 1) -> list[IngestWorker]:
        for _ in range(n):
            w = IngestWorker(central_kit, db_url, host=broker.host, port=broker.port,
                             identity=len(started) + 1, clock=lambda: AT)  # fmt: skip
            w.start()
            started.append(w)
        return started

    yield start  # type: ignore[misc]
    for w in started:
        w.stop()


def station_up(kit: StationKit, data: Path, port: int) -> tuple[Appliance, Uplink]:
    clock = election_day(kit.p.definition.date, 7, 50)
    app = kit.start(data, clock)
    up = Uplink.from_bundle(app.store, app.bundle, kit.passphrase, clock=clock,
                            host="127.0.0.1", port=port, resend_after=1.0)  # fmt: skip
    up.start()
    return app, up


def stored(db_url: str) -> dict[tuple[str, int], bytes]:
    with open_database(db_url) as db:
        return {(r["station_id"], r["seq"]): r["raw"] for r in db.query("SELECT * FROM messages")}


def test_a_stations_day_is_stored_byte_for_byte_and_every_message_acknowledged(
    kit: StationKit, broker: Broker, workers: object, db_url: str, tmp_path: Path
) -> None:
    workers(1)  # type: ignore[operator]
    app, up = station_up(kit, tmp_path / "st", broker.port)
    try:
        app.open_polls("chair")
        app.clock.set(20, 1)  # type: ignore[attr-defined]
        app.close_polls("chair", CHAIR_CODE)
        up.notify()
        wait_until(lambda: up.status().pending == 0, what="every message acknowledged")
        want = {(app.station.id, m.seq): m.to_bytes() for m in app.signer.messages()}
        assert stored(db_url) == want
    finally:
        up.stop()
        app.close()


def test_refused_payloads_raise_alerts_and_the_worker_goes_on(
    provisioned: Provisioned, broker: Broker, workers: object, db_url: str
) -> None:
    (w,) = workers(1)  # type: ignore[operator]
    a = DeviceSigner(provisioned, provisioned.definition.stations[0].number)
    c = station_client(provisioned, a.station.number, broker.port)
    try:
        c.publish(a.topic("turnout"), b"not json at all", qos=1)
        c.publish(a.topic("turnout"), b"x" * 300_000, qos=1)
        forged = a.turnout(5).to_bytes().replace(b'"voted":5', b'"voted":50')
        a.seq, a.prev = 0, "0" * 64
        c.publish(a.topic("turnout"), forged, qos=1)
        good = a.turnout(5)
        c.publish(a.topic("turnout"), good.to_bytes(), qos=1)
        wait_until(lambda: w.stats.accepted == 1 and w.stats.refused == 3, what="all four seen")
        assert stored(db_url) == {(a.station_id, 0): good.to_bytes()}
        with open_database(db_url) as db:
            kinds = sorted(r["kind"] for r in db.query("SELECT kind FROM alerts"))
        assert kinds == ["forged", "malformed", "oversized"]
    finally:
        c.loop_stop()
        c.disconnect()


def test_a_duplicate_is_acknowledged_again_and_changes_nothing(
    provisioned: Provisioned, broker: Broker, workers: object, db_url: str
) -> None:
    (w,) = workers(1)  # type: ignore[operator]
    a = DeviceSigner(provisioned, provisioned.definition.stations[1].number)
    c = station_client(provisioned, a.station.number, broker.port)
    acks: list[bytes] = []
    c.on_message = lambda cl, u, m: acks.append(bytes(m.payload))
    c.subscribe(f"shailoo/v1/station/{a.station_id}/ack", qos=1)
    try:
        env = a.turnout(7)
        for _ in range(3):
            c.publish(a.topic("turnout"), env.to_bytes(), qos=1)
        wait_until(lambda: len(acks) == 3, what="three acks for three copies")
        assert w.stats.accepted == 1 and w.stats.duplicates == 2
        assert stored(db_url) == {(a.station_id, 0): env.to_bytes()}
    finally:
        c.loop_stop()
        c.disconnect()


def test_two_workers_share_the_stream_and_store_each_message_once(
    provisioned: Provisioned, broker: Broker, workers: object, db_url: str
) -> None:
    pool = workers(2)  # type: ignore[operator]
    signers = [DeviceSigner(provisioned, s.number) for s in provisioned.definition.stations]
    clients = [station_client(provisioned, s.station.number, broker.port) for s in signers]
    want = {}
    try:
        for i in range(30):
            for s, c in zip(signers, clients, strict=True):
                env = s.turnout(i)
                want[(s.station_id, env.seq)] = env.to_bytes()
                c.publish(s.topic("turnout"), env.to_bytes(), qos=1)
        wait_until(lambda: sum(w.stats.accepted for w in pool) == len(want), timeout=60,
                   what="every message accepted once")  # fmt: skip
        assert all(w.stats.accepted > 0 for w in pool), [w.stats for w in pool]  # shared
        assert stored(db_url) == want
    finally:
        for c in clients:
            c.loop_stop()
            c.disconnect()
