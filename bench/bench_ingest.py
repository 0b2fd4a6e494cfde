"""The central server end to end over MQTT: verified, stored, aggregated reports per second.

Set-up: the sample parliament election at full size (STATIONS stations, 37
contests); a CEC root, one device key and signing certificate per station and
the central kit (provisioning.central_kit, as `provision build` writes it,
without the voter bundles); Mosquitto with the production configuration, TLS
and ACL on 127.0.0.1, plus one load-generator identity allowed to publish on
every station's up topic (a station may publish only on its own; the load
generator stands in for 2,500 modems); the central server (central.server:
ingest worker processes on the shared subscription, the results publisher)
on SQLite (WAL, synchronous=FULL) or PostgreSQL (this machine's, a fresh
database). Every message is signed beforehand (not timed).

Figures, for 1 and 2 ingest workers on each database:
- day messages per second: every station's zero ASU report, first
  identification report and TURNOUTS turnout snapshots, published QoS 1 as
  fast as the load generator can, until the last is stored (each verified:
  parse, certificate, signature, chain; stored with its aggregates; acked);
- closing storm per second: every station's final ASU report (all contests)
  and final identification report;
- publish -> published: for a sample of closing reports, the time from the
  load generator's publish to the first published results version that
  shows that station delivered (p50, p99).
Baseline: the same broker's plain publish -> shared-subscription delivery of
the same payloads to one subscriber that does nothing with them.
Both cores are used (the bench's one-core pin is lifted for this one).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import shutil
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion

from bench import Figure, percentile
from central.mosquitto import Broker, render_acl, start_mosquitto
from crypto import certs, keys
from crypto.envelope import GENESIS_PREV, Envelope, format_time, sign_envelope
from election.bundle import BrokerSettings
from election.definition import Contest, ElectionDefinition
from election.tally import ContestTally

STATIONS = int(os.environ.get("SHAILOO_BENCH_STATIONS", "2500"))
TURNOUTS = 4
LATENCY_SAMPLES = 200
TZ = ZoneInfo("Asia/Bishkek")
PG_ADMIN = os.environ.get("SHAILOO_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
LOADGEN = "bench-loadgen"
PREFIX = "shailoo/v1"


def main() -> list[Figure]:
    if hasattr(os, "sched_setaffinity"):
        pinned = os.sched_getaffinity(0)
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
    tmp = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    try:
        return _run(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, pinned)


# --- set-up --------------------------------------------------------------------------------------
class _Station:
    def __init__(self, definition: ElectionDefinition, station_id: str, device: str,
                 key: Ed25519PrivateKey) -> None:  # fmt: skip
        self.definition, self.station = definition, definition.station(station_id)
        self.device, self.key = device, key
        self.seq, self.prev = 0, GENESIS_PREV

    def sign(self, kind: str, body: dict[str, Any], hh: int) -> Envelope:
        env = sign_envelope(
            self.key, kind=kind, election=self.definition.election_hash, station=self.station.id,
            device=self.device, seq=self.seq, prev=self.prev,
            time=format_time(dt.datetime.combine(self.definition.date, dt.time(hh, 1), tzinfo=TZ)),
            body=body,
        )  # fmt: skip
        self.seq, self.prev = self.seq + 1, env.hash
        return env

    def asu(self, phase: str, tallies: list[ContestTally], hh: int, **extra: Any) -> Envelope:
        body = {"phase": phase, "mode": "live", "sheets": max(t.ballots for t in tallies),
                "deferred_sheets": 0, "returned": {}, "tallies": [t.to_obj() for t in tallies],
                "deferred_tallies": [], **extra}  # fmt: skip
        return self.sign("asu_report", body, hh)

    def ident(self, phase: str, n: int, hh: int) -> Envelope:
        at = dt.datetime.combine(self.definition.date, dt.time(hh, 1), tzinfo=TZ).isoformat()
        body = {"phase": phase, "mode": "live", "registered": self.station.registered_voters,
                "as_of": at, "voted": n, "identified_by_face": n, "admitted_by_document": 0,
                "mobile_box": 0, "by_hour": {"08": n} if n else {}}  # fmt: skip
        return self.sign("identification_report", body, hh)

    def turnout(self, voted: int, hh: int) -> Envelope:
        at = dt.datetime.combine(self.definition.date, dt.time(hh, 1), tzinfo=TZ).isoformat()
        body = {"mode": "live", "as_of": at, "registered": self.station.registered_voters,
                "voted": voted}  # fmt: skip
        return self.sign("turnout", body, hh)


def _tally(contest: Contest, rng: random.Random, ballots: int) -> ContestTally:
    invalid = rng.randint(0, ballots // 20)
    weights = [rng.random() for _ in contest.options]
    total = sum(weights)
    votes = {o.id: int((ballots - invalid) * w / total)
             for o, w in zip(contest.options, weights, strict=True)}  # fmt: skip
    votes[contest.options[0].id] += ballots - invalid - sum(votes.values())
    prefs = {c.id: votes[o.id] // (2 * len(o.candidates))
             for o in contest.options for c in o.candidates}  # fmt: skip
    return ContestTally(contest_id=contest.id, ballots=ballots, invalid=invalid,
                        invalid_by_reason={"blank": invalid} if invalid else {},
                        votes=votes, preferences=prefs)  # fmt: skip


def _election(tmp: Path) -> tuple[Path, str, list[list[Envelope]], list[Envelope]]:
    """The central kit of a full-size election, and every station's signed messages."""
    from provisioning.central_kit import issue_central_identity, write_central_kit
    from provisioning.keyceremony import RootCA
    from provisioning.sample import build_definition

    definition = build_definition(stations=STATIONS, voters_per_station=1500, seed=5)
    now = dt.datetime.combine(definition.date, dt.time(6, 0), tzinfo=TZ) - dt.timedelta(days=5)
    root_key = keys.generate_signing_key()
    root_cert = certs.make_root(root_key, not_before=now - dt.timedelta(days=1),
                                not_after=now + dt.timedelta(days=365))  # fmt: skip
    root = RootCA(root_key, root_cert)
    until = now + dt.timedelta(days=200)
    rng = random.Random(5)
    devices: list[tuple[str, str, bytes]] = []
    day: list[list[Envelope]] = []
    close: list[Envelope] = []
    for s in definition.stations:
        key = keys.generate_signing_key()
        device = f"dev-{s.number}"
        cert = certs.issue_device_certificate(
            root_key, root_cert, key.public_key(), station_id=s.id, device_id=device,
            election_hash=definition.election_hash, purpose="signing",
            not_before=now - dt.timedelta(days=1), not_after=until,
        )  # fmt: skip
        devices.append((s.id, device, certs.cert_to_pem(cert)))
        st = _Station(definition, s.id, device, key)
        contests = definition.contests_for_station(s.id)
        voted = rng.randint(s.registered_voters // 3, s.registered_voters * 3 // 4)
        msgs = [st.asu("zero", [ContestTally.zero(c) for c in contests], 7),
                st.ident("first", 0, 7)]  # fmt: skip
        msgs += [st.turnout(voted * (i + 1) // (TURNOUTS + 1), 9 + 3 * i) for i in range(TURNOUTS)]
        day.append(msgs)
        tallies = [_tally(c, rng, voted - rng.randint(0, 5)) for c in contests]
        close.append(st.asu("final", tallies, 20, voters_identified=voted, problems=[]))
        close.append(st.ident("final", voted, 20))
    identity = issue_central_identity(root, definition, now=now)
    out = tmp / "prov"
    out.mkdir()
    write_central_kit(out, definition, root, identity, devices, broker=BrokerSettings())
    # the load generator: a TLS identity the bench's ACL lets write every station's topics
    lg_key = keys.generate_tls_key()
    lg = certs.issue_device_certificate(
        root_key, root_cert, lg_key.public_key(), station_id=LOADGEN, device_id=LOADGEN,
        election_hash=definition.election_hash, purpose="tls",
        not_before=now - dt.timedelta(days=1), not_after=until,
    )  # fmt: skip
    (tmp / "loadgen-cert.pem").write_bytes(certs.cert_to_pem(lg))
    (tmp / "loadgen-key.pem").write_bytes(keys.unencrypted_private_key_pem(lg_key))
    return out / "central", identity.passphrase, day, close


def _broker(kit: Path, tmp: Path) -> Broker:
    from central.mosquitto import ACL_TEMPLATE, CONF_TEMPLATE
    from provisioning.central_kit import tls_users

    acl = render_acl(ACL_TEMPLATE.read_text(), PREFIX, tls_users())
    acl += f"\n# bench only: the load generator stands in for every modem\nuser {LOADGEN}\n"
    acl += f"topic write {PREFIX}/station/+/up/#\n"
    (tmp / "broker").mkdir()
    (tmp / "broker" / "acl").write_text(acl)
    (tmp / "broker" / "data").mkdir()
    return start_mosquitto(
        CONF_TEMPLATE.read_text(), tmp / "broker", bind_address="127.0.0.1",
        cafile=kit / "broker" / "ca.pem", certfile=kit / "broker" / "server-cert.pem",
        keyfile=kit / "broker" / "server-key.pem", acl_file=tmp / "broker" / "acl",
        persistence_location=f"{tmp / 'broker' / 'data'}/",
    )  # fmt: skip


def _client(kit: Path, tmp: Path, port: int, *, loadgen: bool, worker: int = 4) -> mqtt.Client:
    import ssl

    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(kit / "cec-root.pem"))
    if loadgen:
        ctx.load_cert_chain(str(tmp / "loadgen-cert.pem"), str(tmp / "loadgen-key.pem"))
    c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5,
                    client_id=LOADGEN if loadgen else "")  # fmt: skip
    c.tls_set_context(ctx)
    c.max_inflight_messages_set(1000)
    c.max_queued_messages_set(0)
    return c


# --- the runs ------------------------------------------------------------------------------------
def _run(tmp: Path) -> list[Figure]:
    t0 = time.perf_counter()
    kit, passphrase, day, close = _election(tmp)
    setup_s = time.perf_counter() - t0
    broker = _broker(kit, tmp)
    figures: list[Figure] = []
    try:
        day_flat = [m for msgs in zip(*day, strict=True) for m in msgs]
        base = _baseline(kit, passphrase, tmp, broker, day_flat + close)
        figures.append(base)
        for kind in ("sqlite", "postgresql"):
            for workers in (1, 2):
                figures += _one(kit, passphrase, tmp, broker, kind, workers, day_flat, close, base)
    finally:
        broker.stop()
    figures.append(Figure("set-up: sign every message, issue every certificate", setup_s, "s",
                          note=f"{STATIONS} stations"))  # fmt: skip
    return figures


def _publish_all(c: mqtt.Client, msgs: list[Envelope], sent_at: dict[str, float]) -> None:
    for m in msgs:
        info = c.publish(f"{PREFIX}/station/{m.station}/up/{m.kind}", m.to_bytes(), qos=1)
        if m.kind == "identification_report" and m.body.get("phase") == "final":
            sent_at[m.station] = time.perf_counter()
        while info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:  # pragma: no cover - paho's queue is unbounded
            time.sleep(0.001)


def _baseline(kit: Path, passphrase: str, tmp: Path, broker: Broker,
              msgs: list[Envelope]) -> Figure:  # fmt: skip
    from central.kit import load_kit

    k = load_kit(kit, passphrase)
    got = [0]
    done = threading.Event()
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    sub.tls_set_context(k.tls_context(4))

    def on_message(*_: object) -> None:
        got[0] += 1
        if got[0] == len(msgs):
            done.set()

    sub.on_message = on_message
    sub.connect(broker.host, broker.port)
    sub.subscribe(f"$share/bench/{PREFIX}/station/+/up/#", qos=1)
    sub.loop_start()
    pub = _client(kit, tmp, broker.port, loadgen=True)
    pub.connect(broker.host, broker.port)
    pub.loop_start()
    time.sleep(0.5)
    t0 = time.perf_counter()
    _publish_all(pub, msgs, {})
    done.wait(600)
    rate = got[0] / (time.perf_counter() - t0)
    for c in (pub, sub):
        c.loop_stop()
        c.disconnect()
    return Figure("plain MQTT QoS 1 publish -> shared subscriber (same payloads)", rate, "msg/s",
                  note=f"{len(msgs)} messages, TLS, no processing")  # fmt: skip


def _one(kit: Path, passphrase: str, tmp: Path, broker: Broker, kind: str, workers: int,
         day: list[Envelope], close: list[Envelope], base: Figure) -> list[Figure]:  # fmt: skip
    from central.db import open_database
    from central.results import latest_published
    from central.server import CentralServer, ServerSettings

    if kind == "sqlite":
        url = f"sqlite:///{tmp / f'central-{workers}.sqlite'}"
        drop = None
    else:
        import psycopg

        name = f"shailoo_bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        url = PG_ADMIN.rpartition("/")[0] + "/" + name
        drop = name
    server = CentralServer(ServerSettings(kit, passphrase, url, broker.host, broker.port,
                                          workers=workers, publish_every=0.5))  # fmt: skip
    label = f"{kind}, {workers} worker{'s' if workers > 1 else ''}"
    out: list[Figure] = []
    try:
        server.start()
        db = open_database(url)
        pub = _client(kit, tmp, broker.port, loadgen=True)
        pub.connect(broker.host, broker.port)
        pub.loop_start()
        time.sleep(0.5)

        def stored() -> int:
            row = db.one("SELECT COUNT(*) AS n FROM messages")
            return int(row["n"]) if row else 0

        for phase, msgs, start_count in (("day", day, 0), ("closing storm", close, len(day))):
            sent: dict[str, float] = {}
            t0 = time.perf_counter()
            _publish_all(pub, msgs, sent)
            while stored() < start_count + len(msgs):
                if time.perf_counter() - t0 > 900:
                    raise RuntimeError(f"{label}: {phase} did not finish in 15 min")
                time.sleep(0.05)
            rate = len(msgs) / (time.perf_counter() - t0)
            out.append(Figure(f"ingest {phase} ({label})", rate, "msg/s", rate / base.value,
                              base.name, f"{len(msgs)} signed messages, verified + stored + "
                              "aggregated + acked"))  # fmt: skip
        # publish -> published: which stations the newest published version shows delivered
        sample = random.Random(1).sample(sorted(sent), min(LATENCY_SAMPLES, len(sent)))
        lat: list[float] = []
        deadline = time.perf_counter() + 120
        seen_version = None
        while len(lat) < len(sample) and time.perf_counter() < deadline:
            pubd = latest_published(db)
            if pubd is not None and pubd.version != seen_version:
                at = time.perf_counter()
                seen_version = pubd.version
                doc = json.loads(pubd.text)
                delivered = _delivered(doc)
                lat = [at - sent[s] for s in sample if s in delivered]
            time.sleep(0.05)
        if lat:
            for q in (50, 99):
                out.append(Figure(f"publish -> published result p{q} ({label})",
                                  percentile(lat, q), "s",
                                  note=f"{len(lat)} sampled closing stations" if q == 50
                                  else ""))  # fmt: skip
        pub.loop_stop()
        pub.disconnect()
        db.close()
    finally:
        server.stop()
        if drop:
            import psycopg

            with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = %s", (drop,))  # fmt: skip
                admin.execute(f'DROP DATABASE IF EXISTS "{drop}"')
    return out


def _delivered(doc: dict[str, Any]) -> set[str]:
    """Stations whose final ASU count the document shows (the national contest's station rows)."""
    for contest in doc["contests"]:
        if contest["district_id"] is None:
            units = contest["units"].get("station", [])
            return {u["id"] for u in units if u.get("asu") and u["asu"]["ballots"] > 0}
    return set()
