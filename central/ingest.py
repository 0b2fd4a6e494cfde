"""The ingest worker: station messages in from MQTT, verified, stored, then acknowledged.

Several workers run side by side on one MQTT v5 shared subscription
(`$share/{group}/{prefix}/station/+/up/#`): the broker hands each message to
one of them. A worker takes what has arrived (up to `batch_max`, waiting at
most `batch_wait` seconds for more), verifies each payload (central.verify),
stores the verified ones with their effect on the aggregates in ONE
transaction (central.evidence.accept_batch: group commit), and only after the
commit publishes the CEC's signed acknowledgement of each accepted or
duplicate message. A refused payload gets no ack, an alert and a log line,
and never stops the worker.

A crash anywhere loses nothing: the broker's PUBACK is not the CEC's ack, so
a message whose transaction did not commit stays in the station's outbox and
comes again; a message that committed but whose ack was lost comes again as
a duplicate, changes nothing, and is acknowledged again.
"""

from __future__ import annotations

import datetime as dt
import gc
import logging
import queue
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from central import alerts, evidence
from central.db import open_database
from central.devices import all_devices, find_device
from central.kit import CentralKit
from central.verify import Refused, Verifier
from crypto.envelope import CEC_STATION, GENESIS_PREV, Envelope, format_time, sign_envelope
from election.definition import ElectionDefinition

log = logging.getLogger("shailoo.ingest")

ACK_KIND = "ack"
SHARE_GROUP = "ingest"
Clock = Callable[[], dt.datetime]
# paho's network thread needs the GIL for every socket read and write; with Python's
# default 5 ms switch interval it waits that long each time while the ingest thread
# computes, and messages stall in the broker (measured: the ingest thread then idled
# 20-40% of a busy run waiting for them).
SWITCH_INTERVAL = 0.0005
GC_THRESHOLD = (10_000, 20, 20)  # a batch allocates ~100k short-lived objects


def tune_process() -> None:
    """Settings for a process whose work is ingest (idempotent): a short GIL switch
    interval, and the garbage collector told to leave what is loaded by now (election,
    certificates, kit) alone and to run less often."""
    sys.setswitchinterval(SWITCH_INTERVAL)
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)


def up_filter(prefix: str, group: str = SHARE_GROUP) -> str:
    """The shared subscription every worker joins."""
    return f"$share/{group}/{prefix}/station/+/up/#"


def ack_topic(prefix: str, station_id: str) -> str:
    return f"{prefix}/station/{station_id}/ack"


class AckSigner:
    """Signs acknowledgements with the server's own key, chained per worker (not checked)."""

    def __init__(
        self, key: Ed25519PrivateKey, device_id: str, election_hash: str, clock: Clock
    ) -> None:
        self._key = key
        self._device = device_id
        self._election = election_hash
        self._clock = clock
        self._seq = 0
        self._prev = GENESIS_PREV
        self._lock = threading.Lock()

    def sign(self, station: str, seq: int, digest: str) -> Envelope:
        with self._lock:
            env = sign_envelope(
                self._key,
                kind=ACK_KIND,
                election=self._election,
                station=CEC_STATION,
                device=self._device,
                seq=self._seq,
                prev=self._prev,
                time=format_time(self._clock()),
                body={"station": station, "seq": seq, "hash": digest},
            )
            self._seq += 1
            self._prev = env.hash
            return env


@dataclass
class IngestStats:
    received: int = 0
    accepted: int = 0
    duplicates: int = 0
    refused: int = 0
    acks_sent: int = 0
    batches: int = 0
    refusals: dict[str, int] = field(default_factory=dict)


class IngestWorker:
    """One worker: its own database connection and MQTT connection; `start()`, `stop()`."""

    def __init__(
        self,
        kit: CentralKit,
        db_url: str,
        *,
        host: str,
        port: int,
        identity: int = 1,
        client_id: str | None = None,
        group: str = SHARE_GROUP,
        batch_max: int = 500,
        batch_wait: float = 0.005,
        clock: Clock | None = None,
    ) -> None:
        self.kit = kit
        self.definition: ElectionDefinition = kit.definition
        self.clock: Clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self.db = open_database(db_url)
        evidence.load_stations(self.db, self.definition)
        self.verifier = Verifier(
            self.definition,
            kit.root_cert,
            all_devices(self.db, kit),
            topic_prefix=kit.broker.topic_prefix,
            clock=self.clock,
            lookup=lambda station, device: find_device(self.db, station, device),
        )
        self.verifier.check_certificates()  # once, here, not in each station's first message
        self.acks = AckSigner(
            kit.ack_key, kit.ack_device_id, self.definition.election_hash, self.clock
        )
        self.prefix = kit.broker.topic_prefix
        self.host, self.port = host, port
        self.group = group
        self.batch_max, self.batch_wait = batch_max, batch_wait
        self.stats = IngestStats()
        self._inbox: queue.SimpleQueue[tuple[str, bytes, dt.datetime]] = queue.SimpleQueue()
        self._pending = 0  # received and not yet processed (wait_idle)
        self._pending_lock = threading.Lock()
        self._stopping = threading.Event()
        self._subscribed = threading.Event()
        self._thread: threading.Thread | None = None
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or "",
            protocol=mqtt.MQTTv5,
        )
        self.client.tls_set_context(kit.tls_context(identity))
        self.client.reconnect_delay_set(1, 30)
        self.client.max_inflight_messages_set(100)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message

    # --- control -----------------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> None:
        """Connect, subscribe, and start working; returns once the subscription is in place."""
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 0
        self.client.connect_async(self.host, self.port, keepalive=30, properties=props)
        tune_process()
        self.client.loop_start()
        self._thread = threading.Thread(target=self._work, name="ingest", daemon=True)
        self._thread.start()
        if not self._subscribed.wait(timeout):
            self.stop()
            raise RuntimeError(
                f"ingest could not subscribe at {self.host}:{self.port} within {timeout} s"
            )

    def stop(self) -> None:
        self._stopping.set()
        self.client.disconnect()
        self.client.loop_stop()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        self.db.close()

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """True once nothing waits in the worker's inbox (tests and the demo)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self._pending == 0:
                return True
            time.sleep(0.01)
        return False

    # --- MQTT callbacks (paho's thread) -------------------------------------------------
    def _on_connect(self, c: mqtt.Client, u: object, flags: object, rc: ReasonCode,
                    props: object) -> None:  # fmt: skip
        if rc.is_failure:
            log.error("ingest: broker refused the connection: %s", rc)
            return
        c.subscribe(up_filter(self.prefix, self.group), qos=1)

    def _on_subscribe(self, c: mqtt.Client, u: object, mid: int, rcs: list[ReasonCode],
                      props: object) -> None:  # fmt: skip
        if rcs and rcs[0].is_failure:
            log.error("ingest: subscription refused: %s", rcs[0])
            return
        self._subscribed.set()

    def _on_message(self, c: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
        with self._pending_lock:
            self._pending += 1
        self._inbox.put((msg.topic, bytes(msg.payload), self.clock()))

    # --- the work (own thread) ----------------------------------------------------------
    def _work(self) -> None:
        while not self._stopping.is_set():
            try:
                first = self._inbox.get(timeout=0.1)
            except queue.Empty:
                continue
            batch = [first]
            deadline = time.monotonic() + self.batch_wait
            while len(batch) < self.batch_max:
                left = deadline - time.monotonic()
                try:
                    batch.append(
                        self._inbox.get(timeout=left) if left > 0 else self._inbox.get_nowait()
                    )
                except queue.Empty:
                    break
            try:
                try:
                    self.process(batch)
                except Exception:
                    # One message the code cannot handle must not hold back the others:
                    # take the batch one by one; only that message stays unacknowledged.
                    log.exception("ingest: a batch of %d failed; retrying one by one", len(batch))
                    for item in batch:
                        try:
                            self.process([item])
                        except Exception:  # the worker must survive; the station will resend
                            log.exception("ingest: a message on %s failed; not acknowledged",
                                          item[0])  # fmt: skip
            finally:
                with self._pending_lock:
                    self._pending -= len(batch)

    def process(self, batch: list[tuple[str, bytes, dt.datetime]]) -> list[Any]:
        """Verify, store in one transaction, then acknowledge; returns the decisions."""
        self.stats.received += len(batch)
        self.stats.batches += 1
        verified: list[tuple[Envelope, bytes, dt.datetime]] = []
        refusals: list[tuple[Refused, bytes, dt.datetime]] = []
        for topic, payload, at in batch:
            try:
                verified.append((self.verifier.check(topic, payload), payload, at))
            except Refused as refusal:
                refusals.append((refusal, payload, at))
        decisions: list[Any] = []
        with self.db.transaction() as tx:
            unknown = any(r.kind == "unknown_device" for r, _, _ in refusals)
            if unknown and self.db.kind == "postgresql":
                # Before any alert is touched: serialised with authorise_device (which inserts
                # the device first, then resolves its unknown_device alert), so a refusal
                # either sees the device authorised or raises an alert the authorisation
                # resolves.  SQLite's BEGIN IMMEDIATE serialises the whole transaction anyway.
                tx.execute("LOCK TABLE devices IN SHARE MODE")
            for r, payload, at in refusals:
                self._refuse(tx, r, payload, at)
            if verified:
                decisions = evidence.accept_batch(self.db, self.definition, verified)
        for (env, _, _), d in zip(verified, decisions, strict=True):
            if d.status == "accepted":
                self.stats.accepted += 1
            elif d.status == "duplicate":
                self.stats.duplicates += 1
            else:
                self.stats.refused += 1
                self.stats.refusals[d.status] = self.stats.refusals.get(d.status, 0) + 1
                log.warning("ingest: refused %s seq %d from %s: %s", env.kind, env.seq,
                            env.station, d.reason)  # fmt: skip
                continue
            ack = self.acks.sign(env.station, env.seq, d.hash)  # = env.hash: SHA-256 of payload
            self.client.publish(ack_topic(self.prefix, env.station), ack.to_bytes(), qos=1)
            self.stats.acks_sent += 1
        return decisions

    def _refuse(self, tx: Any, r: Refused, payload: bytes, at: dt.datetime) -> None:
        self.stats.refused += 1
        self.stats.refusals[r.kind] = self.stats.refusals.get(r.kind, 0) + 1
        log.warning("ingest: refused a payload (%s) claiming station %s: %s", r.kind, r.station,
                    r.reason)  # fmt: skip
        if r.kind == "unknown_device" and tx.one(
            "SELECT 1 AS yes FROM devices WHERE station_id = ? AND device_id = ? "
            "AND revoked_at IS NULL",
            (r.station, r.device),
        ):
            return  # authorised since it was checked (its alert resolved): it comes again
        alerts.raise_alert(
            tx,
            kind=r.kind,
            severity="critical" if r.kind in ("forged", "wrong_election") else "medium",
            station_id=r.station,
            detail=r.reason,
            evidence=[{"excerpt": payload[:200].decode("utf-8", "replace"), "size": len(payload)}],
            at=at,
        )
