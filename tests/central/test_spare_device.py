"""A spare device replaces a station's failed appliance mid-day: against a real Mosquitto and a
real ingest worker, its messages are refused (`unknown_device`, no ack) until the CEC
authorises its certificate, then accepted when the uplink resends them; the chain is one, and
the exported record lists the spare."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from central.db import open_database
from central.devices import authorise_device
from central.ingest import IngestWorker
from central.kit import CentralKit
from central.mosquitto import Broker
from central.record import export_record
from station.appliance import Appliance
from station.uplink import Uplink
from tests.support.clock import FakeClock, election_day
from tests.support.provisioned import Provisioned
from tests.support.spare import move_and_take_over, spare_for, vote
from tests.support.station import StationKit
from tests.support.wait import wait_until

AT = dt.datetime(2026, 11, 29, 15, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def kit(provisioned: Provisioned) -> StationKit:
    return StationKit(provisioned, provisioned.definition.stations[1].number)


def uplink(app: Appliance, passphrase: str, clock: FakeClock, port: int) -> Uplink:
    """The running device's link: its own TLS identity, its storage's outbox."""
    return Uplink.from_bundle(app.store, app.bundle, passphrase, clock=clock,
                              host="127.0.0.1", port=port, resend_after=1.0)  # fmt: skip


def test_a_spare_is_refused_until_authorised_then_its_resent_messages_are_accepted(
    provisioned: Provisioned, kit: StationKit, broker: Broker, db_url: str, tmp_path: Path
) -> None:
    central: CentralKit = provisioned.central_kit()
    worker = IngestWorker(central, db_url, host=broker.host, port=broker.port, identity=1,
                          clock=lambda: AT)  # fmt: skip
    worker.start()
    spare = spare_for(provisioned, kit.number, tmp_path / "spares")
    clock = election_day(provisioned.definition.date, 7, 50)
    app = kit.start(tmp_path / "station", clock)
    up = uplink(app, kit.passphrase, clock, broker.port)
    up.start()
    spare_up = None
    try:
        clock.set(8)
        app.open_polls("chair")
        up.notify()
        wait_until(lambda: up.status().pending == 0, what="the opening acknowledged")
        up.stop()  # the appliance fails: its link goes first ...
        clock.set(9, 30)
        vote(app, kit, 0)
        app.turnout_snapshot()  # ... this one is signed but never sent by it
        old = app.signer.messages()
        app.close()

        clock.set(10, 5)
        _, app = move_and_take_over(kit, tmp_path / "station", spare, clock)
        spare_up = uplink(app, spare.passphrase, clock, broker.port)
        spare_up.start()  # the spare's own TLS identity (CN = the station)
        # the failed device's last message is accepted (its key is authorised); the spare's
        # first is refused until the CEC authorises the spare: no ack, an alert
        wait_until(lambda: worker.stats.refusals.get("unknown_device", 0) >= 1,
                   what="the spare's first message refused")  # fmt: skip
        wait_until(lambda: worker.stats.accepted == len(old), what="the failed device's last")
        with open_database(db_url) as db:
            (alert,) = db.query("SELECT station_id, detail, resolved_at FROM alerts "
                                "WHERE kind = 'unknown_device'")  # fmt: skip
            assert alert["station_id"] == kit.p.definition.station_by_number(kit.number).id
            assert spare.device_id in alert["detail"] and alert["resolved_at"] is None
            assert spare_up.outbox.is_pending(len(old))  # never acknowledged
            clock.set(11)
            vote(app, kit, 1)
            app.turnout_snapshot()
            spare_up.notify()
            authorise_device(db, central, spare.cert_path.read_bytes(), by="engineer", at=AT)
            alerts = db.query("SELECT kind, resolved_at FROM alerts")
            assert [a["kind"] for a in alerts] == ["unknown_device"] and alerts[0]["resolved_at"]
        wait_until(lambda: spare_up.status().pending == 0, timeout=30,
                   what="every message of the spare accepted on resend")  # fmt: skip
        signed = app.signer.messages()
        with open_database(db_url) as db:
            rows = db.query("SELECT seq, device_id, raw FROM messages ORDER BY seq")
            assert [bytes(r["raw"]) for r in rows] == [m.to_bytes() for m in signed]
            assert [r["device_id"] for r in rows] == [m.device for m in old] + [spare.device_id] * (
                len(signed) - len(old)
            )
            assert {m.device for m in old} == {app.replaced_devices()[0]}
            assert db.one("SELECT COUNT(*) AS n FROM conflicting_messages") == {"n": 0}
            assert db.query("SELECT kind FROM alerts WHERE resolved_at IS NULL") == []
            # the election record lists both devices of the station
            export_record(db, central, tmp_path / "record", at=AT)
        devices = json.loads((tmp_path / "record" / "devices.json").read_text())["devices"]
        station_id = app.station.id
        mine = sorted(d["device_id"] for d in devices if d["station_id"] == station_id)
        assert mine == sorted([old[0].device, spare.device_id])
        pem = next(d["signing_cert"] for d in devices if d["device_id"] == spare.device_id)
        assert pem.encode() == spare.cert_path.read_bytes()
    finally:
        if spare_up is not None:
            spare_up.stop()
        up.stop()
        app.close()
        worker.stop()
