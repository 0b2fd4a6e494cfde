"""`shailoo central run` as a real process tree: killed with -9 in the middle of a stream of
station messages and started again, it ends with every message stored exactly once; its
watch raises a `gap` alert for a hole that lasts, by itself."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from central.alerts import Alert, alerts, open_alerts
from central.db import open_database
from central.mosquitto import Broker
from station.appliance import Appliance, Health
from station.uplink import Uplink
from tests.support.clock import election_day
from tests.support.provisioned import REPO, Provisioned
from tests.support.signed import DeviceSigner, station_client
from tests.support.station import StationKit
from tests.support.wait import wait_until

PER_STATION = 300


def central_run(
    p: Provisioned, db_url: str, port: int, log: Path, *options: str
) -> subprocess.Popen[bytes]:
    (log.parent / "pass").write_text(p.central_passphrase())
    return subprocess.Popen(
        [sys.executable, "-m", "shailoo", "central", "run", "--kit", str(p.central_dir),
         "--passphrase-file", str(log.parent / "pass"), "--db", db_url,
         "--broker", f"127.0.0.1:{port}", "--workers", "2", *options],
        cwd=REPO, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip


def kill9(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGKILL)  # the server and its workers: a power cut
    proc.wait(10)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            kill9(proc)


def test_central_killed_mid_stream_loses_and_doubles_nothing(
    provisioned: Provisioned, broker: Broker, db_url: str, tmp_path: Path
) -> None:
    stations: list[tuple[Appliance, Uplink]] = []
    for s in provisioned.definition.stations[:3]:
        kit = StationKit(provisioned, s.number)
        clock = election_day(provisioned.definition.date, 9, 0)
        app = kit.start(tmp_path / f"st{s.number}", clock)
        app.open_polls("chair")
        for _ in range(PER_STATION):
            app.heartbeat(Health(battery_percent=90, on_mains=True), outbox_pending=0)
        up = Uplink.from_bundle(app.store, app.bundle, kit.passphrase, clock=clock,
                                host="127.0.0.1", port=broker.port, resend_after=2.0)  # fmt: skip
        stations.append((app, up))
    log = tmp_path / "central.log"
    proc = central_run(provisioned, db_url, broker.port, log)
    try:
        for _, up in stations:
            up.start()

        def stored() -> int:
            with open_database(db_url) as db:
                row = db.one("SELECT COUNT(*) AS n FROM messages")
            return int(row["n"]) if row else 0

        total = sum(len(app.signer.messages()) for app, _ in stations)
        wait_until(lambda: stored() >= 20, timeout=60, what="the first messages stored")
        kill9(proc)
        assert 0 < stored() < total, "killed mid-stream"
        proc = central_run(provisioned, db_url, broker.port, log)
        wait_until(lambda: all(up.status().pending == 0 for _, up in stations), timeout=120,
                   what="every station's outbox empty after the restart")  # fmt: skip
        with open_database(db_url) as db:
            rows = db.query("SELECT station_id, seq, raw FROM messages")
        got = {(r["station_id"], r["seq"]): bytes(r["raw"]) for r in rows}
        want = {(app.station.id, m.seq): m.to_bytes() for app, _ in stations
                for m in app.signer.messages()}  # fmt: skip
        assert got == want
    finally:
        for app, up in stations:
            up.stop()
            app.close()
        stop(proc)
        print(log.read_text()[-3000:])


def test_the_running_server_raises_a_gap_alert_for_a_lasting_hole_by_itself(
    provisioned: Provisioned, broker: Broker, db_url: str, tmp_path: Path
) -> None:
    """Nothing but the server itself (its watch, every few seconds on real time) raises the
    alert: seq 1 arrives, seq 0 does not, and the hole outlives the 1 s grace."""
    signer = DeviceSigner(provisioned, provisioned.definition.stations[0].number)
    lost, kept = signer.turnout(5), signer.turnout(7)
    sid = signer.station_id

    def gaps() -> list[Alert]:
        with open_database(db_url) as db:
            return open_alerts(db, kind="gap")

    def seqs() -> set[int]:
        with open_database(db_url) as db:
            rows = db.query("SELECT seq FROM messages WHERE station_id = ?", (sid,))
        return {int(r["seq"]) for r in rows}

    log = tmp_path / "central.log"
    proc = central_run(provisioned, db_url, broker.port, log, "--gap-grace", "1")
    client = station_client(provisioned, signer.station.number, broker.port)
    try:
        deadline = time.monotonic() + 60
        while seqs() != {1}:  # sent again until the server is up and subscribed
            assert time.monotonic() < deadline, "seq 1 not stored in 60 s"
            client.publish(signer.topic("turnout"), kept.to_bytes(), qos=1)
            time.sleep(0.5)
        (gap,) = wait_until(gaps, timeout=30, what="a gap alert raised by the server's watch")
        assert gap.station_id == sid
        assert f"station {signer.station.number}: messages 0 have not arrived" in gap.detail
        assert gap.evidence == [{"station": sid, "seq": 1, "hash": kept.hash}]

        # The watch ran (it raised the gap): not_delivered only from 2 h after polls close.
        d = provisioned.definition
        close = dt.datetime.combine(d.date, dt.time.fromisoformat(d.polls_close),
                                    tzinfo=ZoneInfo(d.timezone))  # fmt: skip
        with open_database(db_url) as db:
            late = open_alerts(db, kind="not_delivered")
        if dt.datetime.now(dt.UTC) < close + dt.timedelta(hours=2):
            assert late == []
        else:  # the test election's date is past: every station is late
            assert len(late) == len(d.stations)

        client.publish(signer.topic("turnout"), lost.to_bytes(), qos=1)
        wait_until(lambda: gaps() == [], timeout=30, what="the gap alert resolved by the ingest")
        assert seqs() == {0, 1}
        with open_database(db_url) as db:
            assert len(alerts(db, kind="gap")) == 1
    finally:
        client.loop_stop()
        client.disconnect()
        stop(proc)
        print(log.read_text()[-3000:])
