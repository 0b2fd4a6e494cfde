"""The uplink: sends the outbox to the CEC over MQTT v5 + TLS until the CEC itself acknowledges.

A broker PUBACK only says the broker has a message; a message leaves the
outbox only when the CEC's signed acknowledgement (kind "ack", signed by the
CEC root key, naming the station, sequence number and hash) arrives on the
station's ack topic.  Until then it is sent again, byte for byte, on every
new connection and after `resend_after` seconds without an ack, so a modem
down for hours, a broker restart (Debian's Mosquitto 2.0.11 does not restore
v5 sessions) or a station reboot cannot lose a report, and the CEC, which is
idempotent on (station, seq, hash), sees it once in effect.

Topics (docs/protocol.md): the station publishes to
`{prefix}/station/{station}/up/{kind}` and reads `{prefix}/station/{station}/ack`,
QoS 1, persistent session.  The device's TLS key stays encrypted on disk;
`ssl` decrypts it in memory with the device passphrase.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from cryptography import x509
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from crypto import certs
from crypto.envelope import CEC_STATION, Envelope, verify_signed_by_certificate
from crypto.errors import CryptoError
from election import bundle as B
from station.bundle import VerifiedBundle
from station.outbox import Outbox, Outgoing
from station.store import Store

log = logging.getLogger("shailoo.uplink")

ACK_KIND = "ack"
SESSION_EXPIRY = 14 * 24 * 3600  # the whole election period, like the broker's setting
MAX_ACK_SIZE = 16_384
Clock = Callable[[], dt.datetime]


class UplinkError(RuntimeError):
    """The uplink cannot be set up; the message says what to do."""


def up_topic(prefix: str, station_id: str, kind: str) -> str:
    """Where the station publishes a message of `kind`."""
    return f"{prefix}/station/{station_id}/up/{kind}"


def ack_topic(prefix: str, station_id: str) -> str:
    """Where the CEC acknowledges the station's messages."""
    return f"{prefix}/station/{station_id}/ack"


def tls_context(
    root_cert_pem: bytes, cert_file: str, key_file: str, passphrase: str
) -> ssl.SSLContext:
    """Trust only the CEC root; log in with the device certificate, key decrypted in memory."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cadata=root_cert_pem.decode())
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(cert_file, key_file, password=passphrase)
    except ssl.SSLError as e:
        raise UplinkError(
            f"the device TLS key in {key_file} cannot be opened ({e.reason}); "
            "check the device passphrase"
        ) from e
    return ctx


class Backoff:
    """Exponential backoff with jitter: delays grow x2 to `maximum`, each scaled by 0.5..1.0.

    The jitter spreads 2,500 stations that lost the same tower so they do not
    reconnect in the same second when it comes back.
    """

    def __init__(
        self,
        initial: float = 1.0,
        maximum: float = 120.0,
        factor: float = 2.0,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.initial, self.maximum, self.factor, self._rng = initial, maximum, factor, rng
        self._attempt = 0

    def next(self) -> float:
        base = min(self.maximum, self.initial * self.factor**self._attempt)
        self._attempt += 1
        return base * (0.5 + 0.5 * self._rng())

    def reset(self) -> None:
        self._attempt = 0


@dataclass(frozen=True)
class UplinkStatus:
    connected: bool
    pending: int
    last_ack_at: dt.datetime | None
    last_error: str | None
    ignored_acks: int
    connects: int


class Uplink:
    """One station's MQTT link to the CEC, on its own thread: `start()`, `stop()`, `status()`."""

    def __init__(
        self,
        store: Store,
        *,
        station_id: str,
        election_hash: str,
        root_cert: x509.Certificate,
        central_cert: x509.Certificate,
        ssl_context: ssl.SSLContext,
        host: str,
        port: int,
        topic_prefix: str,
        clock: Clock,
        backoff: Backoff | None = None,
        sleep: Callable[[float], None] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        resend_after: float = 30.0,
        keepalive: int = 30,
        poll_interval: float = 0.02,
    ) -> None:
        self.outbox = Outbox(store, clock)
        self.station_id = station_id
        self.election_hash = election_hash
        self._root = root_cert
        self._central = central_cert
        self._ssl = ssl_context
        self.host, self.port, self.prefix = host, port, topic_prefix
        self._clock = clock
        self._backoff = backoff or Backoff()
        self._stopping = threading.Event()
        self._kick = threading.Event()
        self._sleep = sleep or (lambda s: self._stopping.wait(s) and None)
        self._monotonic = monotonic
        self._resend_after = resend_after
        self._keepalive = keepalive
        self._poll = poll_interval
        self._thread: threading.Thread | None = None
        # Touched by the uplink thread; read by status() (single assignments).
        self._connected = False
        self._last_ack: dt.datetime | None = None
        self._last_error: str | None = None
        self._ignored = 0
        self._connects = 0
        self.delays: list[float] = []  # backoff delays taken (what the operator log shows)

    @classmethod
    def from_bundle(
        cls,
        store: Store,
        bundle: VerifiedBundle,
        passphrase: str,
        *,
        clock: Clock,
        host: str | None = None,
        port: int | None = None,
        **options: Any,
    ) -> Uplink:
        """The uplink a verified bundle describes (host/port overridable, e.g. for the modem)."""
        settings = B.BrokerSettings.model_validate_json(bundle.file(B.BROKER_FILE).read_bytes())
        root_pem = bundle.file(B.ROOT_CERT_FILE).read_bytes()  # verified equal to the trusted root
        ctx = tls_context(
            root_pem,
            str(bundle.file(B.TLS_CERT_FILE)),
            str(bundle.file(B.TLS_KEY_FILE)),
            passphrase,
        )
        return cls(
            store,
            station_id=bundle.station.id,
            election_hash=bundle.definition.election_hash,
            root_cert=certs.cert_from_pem(root_pem),
            central_cert=bundle.central_cert(),
            ssl_context=ctx,
            host=host or settings.host,
            port=port or settings.port,
            topic_prefix=settings.topic_prefix,
            clock=clock,
            **options,
        )

    # --- control -------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            raise UplinkError("the uplink is already running")
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name=f"uplink-{self.station_id}")
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Disconnect and join the thread; the outbox keeps whatever is not acknowledged."""
        self._stopping.set()
        self._kick.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise UplinkError("the uplink thread did not stop")
            self._thread = None

    def notify(self) -> None:
        """A message was just signed: send it now rather than at the next poll."""
        self._kick.set()

    def status(self) -> UplinkStatus:
        return UplinkStatus(
            connected=self._connected,
            pending=self.outbox.pending_count(),
            last_ack_at=self._last_ack,
            last_error=self._last_error,
            ignored_acks=self._ignored,
            connects=self._connects,
        )

    # --- the thread ----------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._session()
            except (OSError, ssl.SSLError, ValueError) as e:
                self._last_error = f"{type(e).__name__}: {e}"
                log.info("uplink %s: link down (%s)", self.station_id, self._last_error)
            except Exception as e:  # never let the thread die with messages pending
                self._last_error = f"{type(e).__name__}: {e}"
                log.exception("uplink %s: unexpected error", self.station_id)
            self._connected = False
            if self._stopping.is_set():
                break
            delay = self._backoff.next()
            self.delays.append(delay)
            self._sleep(delay)

    def _session(self) -> None:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=self.station_id, protocol=mqtt.MQTTv5
        )
        client.tls_set_context(self._ssl)
        state: dict[str, Any] = {"connack": None, "subscribed": False, "lost": False}

        def on_connect(c: mqtt.Client, u: object, flags: object, rc: ReasonCode,
                       props: object) -> None:  # fmt: skip
            state["connack"] = rc
            if rc.is_failure:
                self._last_error = f"broker refused the connection: {rc}"
                return
            c.subscribe(ack_topic(self.prefix, self.station_id), qos=1)

        def on_subscribe(c: mqtt.Client, u: object, mid: int, rcs: list[ReasonCode],
                         props: object) -> None:  # fmt: skip
            if rcs and rcs[0].is_failure:
                self._last_error = f"broker refused the ack subscription: {rcs[0]}"
                state["lost"] = True
                return
            state["subscribed"] = True

        def on_disconnect(c: mqtt.Client, u: object, flags: object, rc: ReasonCode,
                          props: object) -> None:  # fmt: skip
            state["lost"] = True

        def on_message(c: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
            self._on_ack(bytes(msg.payload))

        client.on_connect = on_connect
        client.on_subscribe = on_subscribe
        client.on_disconnect = on_disconnect
        client.on_message = on_message
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = SESSION_EXPIRY
        self._connects += 1
        sent: dict[int, float] = {}  # seq -> when last published on this connection
        last_sent = -1
        fresh = True  # the first round on a connection reads the outbox
        last_resend_check = self._monotonic()
        deadline = self._monotonic() + 2 * self._keepalive
        try:
            client.connect(
                self.host, self.port, keepalive=self._keepalive, clean_start=False, properties=props
            )
            while not self._stopping.is_set():
                rc = client.loop(timeout=self._poll)
                if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or state["lost"]:
                    self._last_error = self._last_error or f"connection lost ({rc.name})"
                    return
                rc_connack = state["connack"]
                if rc_connack is not None and rc_connack.is_failure:
                    return
                if not state["subscribed"]:
                    if self._monotonic() > deadline:
                        self._last_error = "no CONNACK/SUBACK from the broker in time"
                        return
                    continue
                if not self._connected:
                    self._connected = True
                    self._last_error = None
                    self._backoff.reset()
                    log.info("uplink %s: connected to %s:%s", self.station_id, self.host, self.port)
                # The outbox is read when something was signed (notify), on the first
                # round of a connection and once a second; not on every wake-up of the
                # network loop (a station reads its outbox ~1/s, not 50/s: at 2,500
                # simulated stations in a few processes those reads took most of the CPU).
                kicked, fresh = self._kick.is_set() or fresh, False
                self._kick.clear()
                now = self._monotonic()
                check = now - last_resend_check >= min(1.0, self._resend_after)
                if kicked or check:
                    for m in self.outbox.pending(after_seq=last_sent):
                        self._publish(client, m)
                        sent[m.seq] = now
                        last_sent = m.seq
                if check:
                    last_resend_check = now
                    if any(now - t >= self._resend_after for t in sent.values()):
                        pending = self.outbox.pending()
                        sent = {m.seq: sent[m.seq] for m in pending if m.seq in sent}
                        for m in pending:
                            if m.seq in sent and now - sent[m.seq] >= self._resend_after:
                                log.info("uplink %s: no ack for seq %d, resending",
                                         self.station_id, m.seq)  # fmt: skip
                                self._publish(client, m)
                                sent[m.seq] = now
        finally:
            if self._connected or state["connack"] is not None:
                try:
                    client.disconnect()
                    client.loop(timeout=0.05)
                except (OSError, ValueError):
                    pass
            sock = client.socket()
            if sock is not None:
                sock.close()

    def _publish(self, client: mqtt.Client, m: Outgoing) -> None:
        client.publish(up_topic(self.prefix, self.station_id, m.kind), m.body, qos=1)

    def _on_ack(self, payload: bytes) -> None:
        """Mark acknowledged only what the CEC root signed for this station's stored bytes."""
        try:
            env = Envelope.from_bytes(payload, max_size=MAX_ACK_SIZE)
            if env.station != CEC_STATION:
                raise CryptoError(f"a reply from {env.station!r}, not from the CEC")
            verify_signed_by_certificate(env, self._central, self._root, self._clock())
        except CryptoError as e:
            self._ignored += 1
            log.warning("uplink %s: ignored a reply not signed by the CEC: %s", self.station_id, e)
            return
        body = env.body
        seq, digest = body.get("seq"), body.get("hash")
        if (
            env.kind != ACK_KIND
            or env.election != self.election_hash
            or body.get("station") != self.station_id
            or isinstance(seq, bool)
            or not isinstance(seq, int)
            or not isinstance(digest, str)
        ):
            self._ignored += 1
            log.warning("uplink %s: ignored a CEC message that is not our ack: %s seq %s",
                        self.station_id, env.kind, env.seq)  # fmt: skip
            return
        if self.outbox.mark_acked(seq, digest):
            self._last_ack = self._clock()
            log.info("uplink %s: seq %d acknowledged by the CEC", self.station_id, seq)
            return
        stored = self.outbox.stored(seq)
        if stored is None or stored.hash != digest:
            self._ignored += 1
            log.warning("uplink %s: CEC ack for seq %s names bytes we never signed",
                        self.station_id, seq)  # fmt: skip
