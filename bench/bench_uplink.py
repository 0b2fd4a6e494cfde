"""A station's reports on their way to the CEC: close -> acknowledged, throughput, sizes.

Set-up (real code throughout): a sample election of STATIONS stations (5 voters
each; the uplink does not care how many) provisioned in a temporary
directory; Mosquitto started with the production configuration, ACL and the
kit's broker certificate (central.mosquitto.start_for_kit) on 127.0.0.1; one
central ingest worker (central.ingest) on a SQLite database; each station an
Appliance started from its verified bundle with its Uplink (MQTT v5, mutual
TLS with its device certificate) connected to the broker. Clean link, all on
this machine.

Figures
- close -> acknowledged: `close_polls` (signs the final ASU report, the final
  identification report and a log digest in one transaction) until the CEC's
  ack of the last of them is committed in the station's outbox; one sample per
  station. Baseline: an MQTT QoS 1 round trip on the same broker and TLS (the
  central identity publishes on the station's ack topic, the station's client
  receives it).
- messages per second one uplink sustains: QUEUED heartbeats signed while the
  uplink is stopped, then the uplink started and timed until the outbox is
  empty. Baseline: the same number of the same-size payloads published QoS 1
  by one client and received by the central identity, no ack.
- sizes: each kind of message as signed (bytes), and the QR set of the
  printed final reports (codes and characters).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import ssl
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench import Figure, percentile
from bench.common import FACES
from central.kit import CentralKit
from central.mosquitto import Broker
from station.identify import FaceOutcome
from station.uplink import Uplink

STATIONS = int(os.environ.get("SHAILOO_BENCH_UPLINK_STATIONS", "12"))
QUEUED = int(os.environ.get("SHAILOO_BENCH_UPLINK_QUEUED", "2000"))
BISHKEK = dt.timezone(dt.timedelta(hours=6))


def main() -> list[Figure]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-uplink-"))
    try:
        return _run(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _provision(tmp: Path) -> tuple[Path, Path]:
    from election.bundle import BrokerSettings
    from provisioning.bundle import build_bundles
    from provisioning.keyceremony import create_root
    from provisioning.roll import validate_roll
    from provisioning.sample import generate_sample

    now = dt.datetime(2026, 11, 22, 10, 0, tzinfo=BISHKEK)
    sample = generate_sample(tmp / "sample", stations=STATIONS, voters_per_station=5, seed=11,
                             kind="parliament", faces_dir=FACES)  # fmt: skip
    validate_roll(sample.roll_path, sample.definition, sample.photos_dir, tmp / "roll")
    root = create_root(tmp / "cec", "bench root passphrase", now=now)
    build_bundles(sample.definition, tmp / "roll", root, tmp / "prov", broker=BrokerSettings(),
                  now=now, workers=2)  # fmt: skip
    return tmp / "prov", tmp / "cec" / "root-cert.pem"


def _run(tmp: Path) -> list[Figure]:
    from central.ingest import IngestWorker
    from central.kit import load_kit
    from central.mosquitto import start_for_kit
    from crypto import certs
    from station.appliance import Appliance, Health
    from station.printing import qr_texts

    prov, root_pem = _provision(tmp)
    passphrases = {
        int(line.split(",")[0]): line.split(",")[2]
        for line in (prov / "secrets" / "device-passphrases.csv").read_text().splitlines()[1:]
    }
    kit_pass = (prov / "secrets" / "central-passphrase.txt").read_text().strip()
    kit = load_kit(prov / "central", kit_pass)
    broker = start_for_kit(prov / "central", tmp / "broker")
    worker = IngestWorker(kit, f"sqlite:///{tmp / 'central.sqlite'}", host=broker.host,
                          port=broker.port)  # fmt: skip
    worker.start()
    root = certs.cert_from_pem(root_pem.read_bytes())
    day = kit.definition.date
    figures: list[Figure] = []
    stopped = False
    try:
        closes: list[float] = []
        sizes: dict[str, int] = {}
        qr: dict[str, tuple[int, int]] = {}
        numbers = sorted(passphrases)
        apps = []
        for n in numbers:
            now = _Clock(dt.datetime.combine(day, dt.time(7, 45), tzinfo=BISHKEK))
            app = Appliance.start(tmp / f"st{n}", prov / "bundles" / str(n), root_cert=root,
                                  passphrase=passphrases[n], matcher=_no_face,
                                  clock=now, chair_code="2468",
                                  index_dir=prov / "national-index")  # fmt: skip
            up = Uplink.from_bundle(app.store, app.bundle, passphrases[n], clock=app.clock,
                                    host=broker.host, port=broker.port)  # fmt: skip
            up.start()
            apps.append((app, up, now))
            app.open_polls("chair")
            up.notify()
            app.heartbeat(Health(), outbox_pending=0)
            app.turnout_snapshot()
            up.notify()
            _wait(_drained(up), "opening reports acked")
            now.at = now.at.replace(hour=20, minute=1)
            t0 = time.perf_counter()
            app.close_polls("chair", "2468")
            up.notify()
            _wait(_drained(up), "closing reports acked", step=0.0005)
            closes.append(time.perf_counter() - t0)
            for m in app.signer.messages():
                key = m.kind + (f" ({m.body['phase']})" if "phase" in m.body else "")
                sizes[key] = max(sizes.get(key, 0), len(m.to_bytes()))
            cert_pem = app.bundle.file("device/signing-cert.pem").read_bytes()
            for m in app.signer.messages():
                if m.body.get("phase") == "final":
                    texts = qr_texts(m, cert_pem)
                    qr[m.kind] = (len(texts), sum(len(t) for t in texts))
        rtt = _mqtt_round_trips(kit, prov, numbers[0], passphrases[numbers[0]], broker)
        base = Figure("MQTT QoS 1 round trip p50 (same broker, TLS)", percentile(rtt, 50), "s")
        figures.append(base)
        for q in (50, 90):
            v = percentile(closes, q)
            figures.append(Figure(f"close -> CEC ack p{q}", v, "s", v / base.value, base.name,
                                  f"{len(closes)} stations" if q == 50 else ""))  # fmt: skip
        figures[-1] = figures[-1].answers(
            "uplink delivery",
            f"{len(closes)} stations, each a real Appliance + Uplink (MQTT v5, mutual TLS) to "
            "real Mosquitto (production config + ACL) and one central ingest worker on SQLite; "
            "from close_polls (3 signed reports) until the CEC's signed ack of the last is "
            "committed in the station's outbox; baseline: an MQTT QoS 1 round trip, same broker",
        )

        app, up, now = apps[0]
        up.stop()
        for _ in range(QUEUED):
            app.heartbeat(Health(battery_percent=80, on_mains=True), outbox_pending=0)
        size = len(app.signer.messages("heartbeat")[-1].to_bytes())
        t0 = time.perf_counter()
        up2 = Uplink.from_bundle(app.store, app.bundle, passphrases[numbers[0]], clock=app.clock,
                                 host=broker.host, port=broker.port)  # fmt: skip
        up2.start()
        _wait(_drained(up2), "queued heartbeats acked", timeout=300)
        rate = QUEUED / (time.perf_counter() - t0)
        up2.stop()
        worker.stop()  # the baseline's raw payloads are not reports: keep them from ingest
        stopped = True
        raw = _mqtt_throughput(kit, prov, numbers[1], passphrases[numbers[1]], broker, size)
        braw = Figure(f"plain MQTT QoS 1 publish -> subscribe ({size} B)", raw, "msg/s")
        figures.append(braw)
        figures.append(Figure("one station's uplink, signed -> CEC ack", rate, "msg/s",
                              rate / raw, braw.name,
                              f"{QUEUED} queued heartbeats of {size} B"))  # fmt: skip
        for kind, n in sorted(sizes.items()):
            figures.append(Figure(f"message size: {kind}", n, "bytes"))
        for kind, (codes, chars) in sorted(qr.items()):
            figures.append(Figure(f"QR set of the final {kind}", codes, "codes",
                                  note=f"{chars} characters incl. the certificate"))  # fmt: skip
        for app, up, _ in apps:
            if up is not apps[0][1]:
                up.stop()
            app.close()
    finally:
        if not stopped:
            worker.stop()
        broker.stop()
    return figures


class _Clock:
    def __init__(self, at: dt.datetime) -> None:
        self.at = at

    def __call__(self) -> dt.datetime:
        return self.at


def _no_face(frame: np.ndarray, template: np.ndarray) -> FaceOutcome:
    raise RuntimeError("no face matching in the uplink bench")


def _drained(up: Uplink) -> Callable[[], bool]:
    return lambda: up.status().pending == 0


def _wait(pred: Callable[[], bool], what: str, timeout: float = 60.0, step: float = 0.005) -> None:
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise RuntimeError(f"{what}: not reached in {timeout} s")
        time.sleep(step)


def _station_ctx(prov: Path, number: int, passphrase: str) -> ssl.SSLContext:
    b = prov / "bundles" / str(number)
    ctx = ssl.create_default_context(
        ssl.Purpose.SERVER_AUTH, cadata=(b / "cec-root.pem").read_text()
    )
    ctx.load_cert_chain(str(b / "device/tls-cert.pem"), str(b / "device/tls-key.pem"),
                        password=passphrase)  # fmt: skip
    return ctx


def _client(ctx: ssl.SSLContext, client_id: str, port: int) -> mqtt.Client:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    c.tls_set_context(ctx)
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c


def _mqtt_round_trips(
    kit: CentralKit, prov: Path, number: int, passphrase: str, broker: Broker, runs: int = 50
) -> list[float]:
    station_id = _station_id(prov, number)
    got = threading.Event()
    st = _client(_station_ctx(prov, number, passphrase), station_id, broker.port)
    st.on_message = lambda *a: got.set()
    st.subscribe(f"shailoo/v1/station/{station_id}/ack", qos=1)
    cen = _client(kit.tls_context(2), "bench-central", broker.port)
    time.sleep(0.3)
    out = []
    for _ in range(runs):
        got.clear()
        t0 = time.perf_counter()
        cen.publish(f"shailoo/v1/station/{station_id}/ack", b"x" * 400, qos=1)
        if not got.wait(5):
            raise RuntimeError("round trip lost")
        out.append(time.perf_counter() - t0)
    for c in (st, cen):
        c.loop_stop()
        c.disconnect()
    return out


def _mqtt_throughput(
    kit: CentralKit, prov: Path, number: int, passphrase: str, broker: Broker, size: int
) -> float:
    station_id = _station_id(prov, number)
    n = [0]
    done = threading.Event()

    def on_message(*_: object) -> None:
        n[0] += 1
        if n[0] == QUEUED:
            done.set()

    cen = _client(kit.tls_context(3), "bench-central-sub", broker.port)
    cen.on_message = on_message
    cen.subscribe(f"shailoo/v1/station/{station_id}/up/#", qos=1)
    st = _client(_station_ctx(prov, number, passphrase), station_id, broker.port)
    time.sleep(0.3)
    t0 = time.perf_counter()
    for _ in range(QUEUED):
        st.publish(f"shailoo/v1/station/{station_id}/up/heartbeat", b"x" * size, qos=1)
    if not done.wait(120):
        raise RuntimeError(f"only {n[0]} of {QUEUED} raw messages arrived")
    rate = QUEUED / (time.perf_counter() - t0)
    for c in (st, cen):
        c.loop_stop()
        c.disconnect()
    return rate


def _station_id(prov: Path, number: int) -> str:
    import json

    return str(json.loads((prov / "bundles" / str(number) / "manifest.json").read_bytes())
               ["body"]["station_id"])  # fmt: skip
