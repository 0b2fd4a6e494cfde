"""The uplink delivers every signed report exactly once in effect, through every fault we know.

Real Mosquitto (production config and ACL), real SQLite, the provisioned
bundle's real keys, a simulated modem, and real `kill -9`.  Backoff sleeps are
virtual (recorded, then a 10 ms real pause), so a modem down for hours costs
the test milliseconds.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion

from crypto import certs, keys
from crypto.envelope import GENESIS_PREV, Envelope, format_time, sign_envelope
from provisioning.central_kit import ACK_DEVICE_ID
from station.appliance import Appliance
from station.store import Store
from station.uplink import Backoff, Uplink, ack_topic
from tests.deploy.test_mosquitto_acl import PASS, Creds, start_shailoo_broker, tls_creds
from tests.support.broker import Broker
from tests.support.clock import FakeClock, election_day
from tests.support.station import CHAIR_CODE, StationKit

REPO = Path(__file__).resolve().parents[2]
PREFIX = "shailoo/v1"  # the provisioned bundles' BrokerSettings default
HERE = "tests.station.test_uplink"


def wait_until(cond: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


class VirtualSleep:
    """Backoff sleeps that record the virtual time asked for and pause 10 ms of real time."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        time.sleep(0.01)

    @property
    def total(self) -> float:
        return sum(self.delays)


class Receiver:
    """The minimal acknowledging CEC receiver (replaced by central ingest in the next issue).

    Records every message it receives by (station, seq) and, while `acking`,
    answers each with an ack envelope signed by `ack_key` (the CEC root).
    """

    def __init__(self, broker: Broker, creds: Creds, ack_key: Ed25519PrivateKey) -> None:
        import ssl

        ctx = ssl.create_default_context(
            ssl.Purpose.SERVER_AUTH, cafile=str(broker.workdir.parent / "pki" / "ca.crt")
        )
        ctx.load_cert_chain(creds.cert, creds.key, password=PASS)  # type: ignore[arg-type]
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.tls_set_context(ctx)
        self.client.reconnect_delay_set(0.05, 0.2)  # type: ignore[arg-type]  # floats work
        self.ack_key = ack_key
        self.acking = True
        self.received: list[Envelope] = []
        self.by_seq: dict[tuple[str, int], set[str]] = defaultdict(set)
        self.subscribed = threading.Event()
        self._ack_seq = 0
        self._prev = GENESIS_PREV
        self._lock = threading.Lock()
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port, keepalive=5)
        self.client.loop_start()
        assert self.subscribed.wait(5), broker.log()[-2000:]

    def _on_connect(self, c: mqtt.Client, *a: Any) -> None:
        c.subscribe(f"{PREFIX}/station/+/up/#", qos=1)

    def _on_message(self, c: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
        env = Envelope.from_bytes(bytes(msg.payload))
        with self._lock:
            self.received.append(env)
            self.by_seq[(env.station, env.seq)].add(env.hash)
        if self.acking:
            self.send_ack(env.election, env.station, env.seq, env.hash)

    def send_ack(
        self,
        election: str,
        station: str,
        seq: int,
        digest: str,
        key: Ed25519PrivateKey | None = None,
        device: str | None = None,
    ) -> None:
        key = key or self.ack_key
        with self._lock:
            ack = sign_envelope(
                key, kind="ack", election=election, station="CEC",
                device=device or ACK_DEVICE_ID, seq=self._ack_seq,
                prev=self._prev, time=format_time(dt.datetime.now(dt.UTC)),
                body={"station": station, "seq": seq, "hash": digest},
            )  # fmt: skip
            self._ack_seq += 1
            self._prev = ack.hash
        self.client.publish(ack_topic(PREFIX, station), ack.to_bytes(), qos=1)

    def seqs(self, station: str) -> dict[int, set[str]]:
        with self._lock:
            return {s: set(h) for (st, s), h in self.by_seq.items() if st == station}

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


# --- fixtures ---------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    wait_until(
        lambda: not [t for t in set(threading.enumerate()) - before if t.is_alive()],
        timeout=5,
        what="uplink, modem and receiver threads to end",
    )


@pytest.fixture
def broker(kit: StationKit, tmp_path: Path) -> Iterator[Broker]:
    b = start_shailoo_broker(tmp_path / "net", kit.p.root.key, kit.p.root.cert, prefix=PREFIX)
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture
def receiver(kit: StationKit, broker: Broker, tmp_path: Path) -> Iterator[Receiver]:
    creds = tls_creds(
        tmp_path / "central", kit.p.root.key, kit.p.root.cert, "cec-central",
        kit.p.definition.election_hash,
    )  # fmt: skip
    r = Receiver(broker, creds, kit.p.central_kit().ack_key)
    try:
        yield r
    finally:
        r.close()


@pytest.fixture
def uplinks() -> Iterator[list[Uplink]]:
    made: list[Uplink] = []
    yield made
    for u in made:
        u.stop()


def start_uplink(
    kit: StationKit, app: Appliance, port: int, made: list[Uplink], sleep: VirtualSleep, **kw: Any
) -> Uplink:
    up = Uplink.from_bundle(
        app.store, app.bundle, kit.passphrase, clock=app.clock, host="127.0.0.1", port=port,
        backoff=Backoff(initial=1.0, maximum=600.0, rng=random.Random(5).random), sleep=sleep,
        **kw,
    )  # fmt: skip
    made.append(up)
    up.start()
    return up


def stored(store: Store) -> dict[int, tuple[str, bytes]]:
    return {r["seq"]: (r["hash"], bytes(r["body"])) for r in store.query("SELECT * FROM messages")}


def assert_delivered_once(receiver: Receiver, station: str, store: Store) -> None:
    """Every stored message reached the CEC with exactly its stored hash; nothing else did."""
    want = {seq: {h} for seq, (h, _) in stored(store).items()}
    assert receiver.seqs(station) == want
    got_bytes = {e.seq: e.to_bytes() for e in receiver.received if e.station == station}
    assert got_bytes == {seq: body for seq, (_, body) in stored(store).items()}


def day(kit: StationKit) -> FakeClock:
    return election_day(kit.p.definition.date, 7, 55)


# --- tests ------------------------------------------------------------------------------------
def test_reports_signed_at_open_and_close_are_delivered_and_acked_once(
    kit: StationKit, broker: Broker, receiver: Receiver, uplinks: list[Uplink], tmp_path: Path
) -> None:
    clock = day(kit)
    app = kit.start(tmp_path / "data", clock)
    up = start_uplink(kit, app, broker.port, uplinks, VirtualSleep())
    app.open_polls("chair")
    wait_until(lambda: up.status().pending == 0, what="opening reports acked")
    clock.set(20, 5)
    app.close_polls("chair", CHAIR_CODE)
    up.notify()
    wait_until(lambda: up.status().pending == 0, what="closing reports acked")
    st = up.status()
    assert st.connected and st.last_ack_at == clock() and st.ignored_acks == 0
    assert len(stored(app.store)) == 5  # zero ASU, first ident.; final ASU, final ident., log
    assert_delivered_once(receiver, app.station.id, app.store)
    assert len(receiver.received) == 5  # a clean link sends each message once
    app.close()


def test_final_report_signed_while_the_modem_is_down_arrives_once_it_is_back(
    kit: StationKit, broker: Broker, receiver: Receiver, uplinks: list[Uplink], tmp_path: Path
) -> None:
    from firmware_sim.modem import Modem

    clock = day(kit)
    app = kit.start(tmp_path / "data", clock)
    sleep = VirtualSleep()
    with Modem("127.0.0.1", broker.port) as modem:
        up = start_uplink(kit, app, modem.port, uplinks, sleep)
        app.open_polls("chair")
        wait_until(lambda: up.status().pending == 0, what="opening reports acked")
        clock.set(19, 55)
        modem.cut()  # 19:55: the tower goes down
        wait_until(lambda: not up.status().connected, what="uplink notices the cut")
        clock.set(20, 5)
        app.close_polls("chair", CHAIR_CODE)
        # Hours of virtual backoff pass; delays grow and stay jittered, capped at 10 minutes.
        wait_until(lambda: sleep.total > 3 * 3600, timeout=30, what="3 h of backoff")
        assert up.status().pending == 3 and not up.status().connected
        assert sleep.delays[0] <= 1.0 and max(sleep.delays) <= 600.0
        assert all(b >= a for a, b in zip(sleep.delays[:8], sleep.delays[1:9], strict=True))
        assert len(set(sleep.delays)) > len(sleep.delays) // 2  # jitter: not one fixed schedule
        clock.set(23, 0)
        modem.drop_after(1500, "up")  # ...and the first connection back dies mid-packet
        modem.restore()
        wait_until(lambda: up.status().pending == 0, what="final reports acked after restore")
        assert modem.stats.dropped_mid_packet == 1
    assert_delivered_once(receiver, app.station.id, app.store)
    app.close()


def test_broker_restarted_while_reports_are_in_flight_they_still_arrive(
    kit: StationKit, broker: Broker, receiver: Receiver, uplinks: list[Uplink], tmp_path: Path
) -> None:
    clock = day(kit)
    app = kit.start(tmp_path / "data", clock)
    # The station may be back before the CEC has resubscribed (this Mosquitto forgets v5
    # sessions), so what it sends then reaches nobody: the no-ack resend timer covers that.
    up = start_uplink(kit, app, broker.port, uplinks, VirtualSleep(), resend_after=0.5)
    receiver.acking = False  # the CEC has not acknowledged yet when the broker goes
    app.open_polls("chair")
    wait_until(lambda: len(receiver.seqs(app.station.id)) == 2, what="reports at the receiver")
    broker.restart()
    receiver.acking = True
    wait_until(lambda: up.status().pending == 0, what="acked after broker restart")
    assert up.status().connects >= 2
    assert_delivered_once(receiver, app.station.id, app.store)
    app.close()


def test_reply_on_the_ack_topic_not_signed_by_the_cec_is_ignored(
    kit: StationKit, broker: Broker, receiver: Receiver, uplinks: list[Uplink], tmp_path: Path
) -> None:
    clock = day(kit)
    app = kit.start(tmp_path / "data", clock)
    up = start_uplink(kit, app, broker.port, uplinks, VirtualSleep(), resend_after=0.3)
    receiver.acking = False
    app.open_polls("chair")
    wait_until(lambda: len(receiver.seqs(app.station.id)) == 2, what="reports at the receiver")
    forger = keys.generate_signing_key()
    election, station = kit.p.definition.election_hash, app.station.id
    for seq, (digest, _) in stored(app.store).items():
        receiver.send_ack(election, station, seq, digest, key=forger)  # claims the CEC's device
        receiver.send_ack(election, station, seq, digest, key=forger,
                          device=keys.key_id(forger.public_key()))  # fmt: skip
        # Not even the root key: acknowledgements come from the server's own certified key.
        receiver.send_ack(election, station, seq, digest, key=kit.p.root.key,
                          device=kit.p.root.key_id)  # fmt: skip
    wait_until(lambda: up.status().ignored_acks == 6, what="forged acks ignored")
    assert up.status().pending == 2 and up.status().last_ack_at is None
    # Unacknowledged, the station resends the same bytes; the real CEC's ack then lands.
    receiver.acking = True
    wait_until(lambda: up.status().pending == 0, what="real acks")
    assert_delivered_once(receiver, station, app.store)
    app.close()


def _run_child(kit: StationKit, data: Path, mode: str, port: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", HERE, str(data), str(kit.bundle),
         str(kit.p.cec_dir / "root-cert.pem"), str(kit.p.index_dir), kit.passphrase,
         kit.p.definition.date.isoformat(), CHAIR_CODE, mode, str(port)],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "SIGNED"
    return proc


def _kill9(proc: subprocess.Popen[str]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.parametrize("when", ["after_signing", "after_sending"])
def test_station_killed_before_the_ack_resends_the_same_bytes_after_restart(
    kit: StationKit,
    broker: Broker,
    receiver: Receiver,
    uplinks: list[Uplink],
    tmp_path: Path,
    when: str,
) -> None:
    data = tmp_path / "data"
    receiver.acking = False
    proc = _run_child(kit, data, "sign" if when == "after_signing" else "send", broker.port)
    try:
        if when == "after_sending":
            wait_until(lambda: len(receiver.seqs(kit.p.definition.stations[0].id)) == 5,
                       what="the child's five messages at the receiver")  # fmt: skip
    finally:
        _kill9(proc)
    before = stored(Store(data / "station.sqlite"))
    assert len(before) == 5
    first_delivery = len(receiver.received)
    assert first_delivery == (5 if when == "after_sending" else 0)

    receiver.acking = True
    clock = election_day(kit.p.definition.date, 20, 10)
    app = kit.start(data, clock)
    up = start_uplink(kit, app, broker.port, uplinks, VirtualSleep())
    wait_until(lambda: up.status().pending == 0, what="acked after restart")
    assert stored(app.store) == before  # nothing was signed again
    assert_delivered_once(receiver, app.station.id, app.store)
    resent = receiver.received[first_delivery:]
    assert sorted(e.seq for e in resent) == sorted(before)
    assert {e.seq: e.to_bytes() for e in resent} == {s: b for s, (_, b) in before.items()}
    app.close()


# --- the station process for the kill -9 tests -------------------------------------------------
def _child_main() -> None:
    data, bundle, root, index, passphrase, date, code, mode, port = sys.argv[1:10]
    when = dt.datetime.combine(
        dt.date.fromisoformat(date), dt.time(20, 5), tzinfo=dt.timezone(dt.timedelta(hours=6))
    )
    from station.facecheck import FaceCheck

    app = Appliance.start(
        Path(data), Path(bundle), root_cert=certs.cert_from_pem(Path(root).read_bytes()),
        passphrase=passphrase, matcher=FaceCheck().check, clock=lambda: when, chair_code=code,
        index_dir=Path(index),
    )  # fmt: skip
    app.open_polls("chair")
    app.close_polls("chair", code)
    print("SIGNED", flush=True)
    if mode == "send":
        Uplink.from_bundle(
            app.store, app.bundle, passphrase, clock=lambda: when, host="127.0.0.1", port=int(port)
        ).start()
    time.sleep(600)


if __name__ == "__main__":
    _child_main()
