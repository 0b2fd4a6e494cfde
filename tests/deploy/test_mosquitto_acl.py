"""The production Mosquitto config and ACL: each station reaches its own topics and nothing else."""

from __future__ import annotations

import datetime as dt
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from crypto import certs, keys
from tests.support.broker import Broker, render_config, start_mosquitto

REPO = Path(__file__).resolve().parents[2]
CONF = REPO / "deploy" / "mosquitto" / "shailoo.conf.template"
ACL = REPO / "deploy" / "mosquitto" / "shailoo.acl.template"
PREFIX = "shailoo/v1"
CENTRAL = "cec-central"
PASS = "device passphrase"
ELECTION = "ab" * 32


@dataclass(frozen=True)
class Creds:
    cert: Path | None
    key: Path | None


def make_root() -> tuple[Ed25519PrivateKey, x509.Certificate]:
    """A CEC root valid around now (TLS checks certificates against the real clock)."""
    key = keys.generate_signing_key()
    now = dt.datetime.now(dt.UTC)
    cert = certs.make_root(
        key, not_before=now - dt.timedelta(days=1), not_after=now + dt.timedelta(days=60)
    )
    return key, cert


def tls_creds(
    d: Path,
    root_key: Ed25519PrivateKey,
    root_cert: x509.Certificate,
    station_id: str,
    election_hash: str = ELECTION,
) -> Creds:
    """A device TLS certificate (CN = `station_id`) and its passphrase-encrypted key."""
    k = keys.generate_tls_key()
    cert = certs.issue_device_certificate(
        root_key, root_cert, k.public_key(), station_id=station_id,
        device_id=f"dev-{station_id}", election_hash=election_hash, purpose="tls",
        not_before=root_cert.not_valid_before_utc, not_after=root_cert.not_valid_after_utc,
    )  # fmt: skip
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{station_id}.crt").write_bytes(certs.cert_to_pem(cert))
    (d / f"{station_id}.key").write_bytes(keys.encrypt_private_key(k, PASS))
    return Creds(d / f"{station_id}.crt", d / f"{station_id}.key")


def start_shailoo_broker(
    workdir: Path,
    root_key: Ed25519PrivateKey,
    root_cert: x509.Certificate,
    *,
    prefix: str = PREFIX,
    central_user: str = CENTRAL,
) -> Broker:
    """Mosquitto on a free port with the production config and ACL, trusting `root_cert`."""
    pki = workdir / "pki"
    pki.mkdir(parents=True, exist_ok=True)
    (pki / "ca.crt").write_bytes(certs.cert_to_pem(root_cert))
    server_key = keys.generate_tls_key()
    server = certs.issue_server_certificate(
        root_key, root_cert, server_key, ["localhost"], ["127.0.0.1"]
    )
    (pki / "server.crt").write_bytes(certs.cert_to_pem(server))
    (pki / "server.key").write_bytes(keys.unencrypted_private_key_pem(server_key))
    (pki / "shailoo.acl").write_text(
        render_config(ACL.read_text(), prefix=prefix, central_user=central_user)
    )
    (workdir / "data").mkdir(exist_ok=True)
    return start_mosquitto(
        CONF.read_text(),
        workdir / "broker",
        bind_address="127.0.0.1",
        cafile=pki / "ca.crt",
        certfile=pki / "server.crt",
        keyfile=pki / "server.key",
        acl_file=pki / "shailoo.acl",
        persistence_location=f"{workdir / 'data'}/",
    )


class Peer:
    """A paho client that records what it receives; connects or records why it could not."""

    def __init__(self, broker: Broker, creds: Creds, ca: Path) -> None:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca))
        if creds.cert is not None:
            ctx.load_cert_chain(creds.cert, creds.key, password=PASS)
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.tls_set_context(ctx)
        self.connected = threading.Event()
        self.codes: list[ReasonCode] = []
        self.got: list[tuple[str, bytes]] = []
        self.arrived = threading.Condition()
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *a: self.connected.set()
        self.client.on_message = self._on_message
        self.broker = broker

    def _on_connect(self, c: mqtt.Client, u: object, f: object, rc: ReasonCode, p: object) -> None:
        self.codes.append(rc)
        self.connected.set()

    def _on_message(self, c: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
        with self.arrived:
            self.got.append((msg.topic, bytes(msg.payload)))
            self.arrived.notify_all()

    def connect(self) -> bool:
        """True if the broker accepted us; never hangs."""
        try:
            self.client.connect(self.broker.host, self.broker.port, keepalive=10)
        except (ssl.SSLError, OSError):
            return False
        self.client.loop_start()
        assert self.connected.wait(5), "neither connected nor refused within 5 s"
        return bool(self.codes) and not self.codes[0].is_failure

    def subscribe(self, topic: str) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda *a: done.set()
        self.client.subscribe(topic, qos=1)
        assert done.wait(5)

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(5)

    def wait_for(self, payload: bytes, timeout: float = 5.0) -> list[tuple[str, bytes]]:
        with self.arrived:
            assert self.arrived.wait_for(lambda: any(p == payload for _, p in self.got), timeout)
            return list(self.got)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Broker, dict[str, Creds]]]:
    d = tmp_path_factory.mktemp("acl")
    root_key, root_cert = make_root()
    other_key, other_cert = make_root()
    creds = {name: tls_creds(d / "clients", root_key, root_cert, name) for name in ("1001", "1002")}
    creds["central"] = tls_creds(d / "clients", root_key, root_cert, CENTRAL)
    creds["impostor"] = tls_creds(d / "impostor", other_key, other_cert, "1002")
    creds["none"] = Creds(None, None)
    broker = start_shailoo_broker(d, root_key, root_cert)
    try:
        yield broker, creds
    finally:
        broker.stop()


@pytest.fixture
def peers(setup: tuple[Broker, dict[str, Creds]]) -> Iterator[dict[str, Peer]]:
    broker, creds = setup
    ca = broker.workdir.parent / "pki" / "ca.crt"
    made: dict[str, Peer] = {}
    for name in ("1001", "1002", "central"):
        made[name] = Peer(broker, creds[name], ca)
        assert made[name].connect(), broker.log()[-2000:]
    try:
        yield made
    finally:
        for p in made.values():
            p.close()


def up(station: str, kind: str = "asu_report") -> str:
    return f"{PREFIX}/station/{station}/up/{kind}"


def ack(station: str) -> str:
    return f"{PREFIX}/station/{station}/ack"


def test_station_cannot_publish_under_another_station(peers: dict[str, Peer]) -> None:
    central = peers["central"]
    central.subscribe(f"{PREFIX}/station/+/up/#")
    peers["1001"].publish(up("1002"), b"forged as 1002")
    peers["1001"].publish(up("1001"), b"own report")  # same connection: arrives after the forgery
    got = central.wait_for(b"own report")
    assert got == [(up("1001"), b"own report")]


def test_station_cannot_read_another_stations_acks(peers: dict[str, Peer]) -> None:
    spy = peers["1001"]
    spy.subscribe(ack("1002"))
    spy.subscribe(ack("1001"))
    victim = peers["1002"]
    victim.subscribe(ack("1002"))
    peers["central"].publish(ack("1002"), b"ack for 1002")
    peers["central"].publish(ack("1001"), b"ack for 1001")
    assert spy.wait_for(b"ack for 1001") == [(ack("1001"), b"ack for 1001")]
    assert victim.wait_for(b"ack for 1002") == [(ack("1002"), b"ack for 1002")]


def test_station_cannot_write_acks_even_its_own(peers: dict[str, Peer]) -> None:
    station = peers["1001"]
    station.subscribe(ack("1001"))
    station.publish(ack("1001"), b"self-made ack")
    peers["central"].publish(ack("1001"), b"real ack")
    assert station.wait_for(b"real ack") == [(ack("1001"), b"real ack")]


def test_station_cannot_read_other_stations_reports(peers: dict[str, Peer]) -> None:
    spy = peers["1001"]
    spy.subscribe(f"{PREFIX}/station/+/up/#")
    spy.subscribe(ack("1001"))
    peers["1002"].publish(up("1002"), b"1002 report")
    peers["central"].publish(ack("1001"), b"marker")
    assert spy.wait_for(b"marker") == [(ack("1001"), b"marker")]


@pytest.mark.parametrize("who", ["none", "impostor"])
def test_client_without_a_root_issued_certificate_is_refused(
    setup: tuple[Broker, dict[str, Creds]], who: str
) -> None:
    broker, creds = setup
    peer = Peer(broker, creds[who], broker.workdir.parent / "pki" / "ca.crt")
    try:
        assert not peer.connect()
    finally:
        peer.close()
