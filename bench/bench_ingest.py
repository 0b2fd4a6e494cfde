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
from paho.mqtt.enums import CallbackAPIVersion

from bench import Figure, percentile
from bench.common import StationSigner, tally
from central.mosquitto import Broker, render_acl, start_mosquitto
from crypto import certs, keys
from crypto.envelope import Envelope
from election.bundle import BrokerSettings
from election.tally import ContestTally

STATIONS = int(os.environ.get("SHAILOO_BENCH_STATIONS", "2500"))
TURNOUTS = 4
LATENCY_SAMPLES = 200
TZ = ZoneInfo("Asia/Bishkek")
PG_ADMIN = os.environ.get("SHAILOO_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
LOADGEN = "bench-loadgen"
HEADLINE = ("sqlite", 2)  # the run whose figures answer the issue's (the storm bench's set-up)
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
def _election(
    tmp: Path, stations: int = STATIONS, *, log_digest: bool = False
) -> tuple[Path, str, list[list[Envelope]], list[Envelope]]:
    """The central kit of an election of `stations` stations, and every station's signed
    messages: (kit, its passphrase, each station's day messages, every closing message).
    The closing messages are each station's final ASU and final identification reports
    (and, with `log_digest`, the log digest a station signs with them), station by station."""
    from provisioning.central_kit import issue_central_identity, write_central_kit
    from provisioning.keyceremony import RootCA
    from provisioning.sample import build_definition

    definition = build_definition(stations=stations, voters_per_station=1500, seed=5)
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
        st = StationSigner(definition, s.id, device, key)
        contests = definition.contests_for_station(s.id)
        voted = rng.randint(s.registered_voters // 3, s.registered_voters * 3 // 4)
        msgs = [st.asu("zero", [ContestTally.zero(c) for c in contests], 7),
                st.ident("first", 0, 7)]  # fmt: skip
        msgs += [st.turnout(voted * (i + 1) // (TURNOUTS + 1), 9 + 3 * i) for i in range(TURNOUTS)]
        day.append(msgs)
        tallies = [tally(c, rng, voted - rng.randint(0, 5)) for c in contests]
        close.append(st.asu("final", tallies, 20, voters_identified=voted, problems=[]))
        close.append(st.ident("final", voted, 20))
        if log_digest:
            close.append(st.log_digest(20, entries=voted * 6))
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
    arrivals = _carry(kit, passphrase, tmp, broker, msgs)
    rate = len(arrivals) / arrivals[-1][0]
    return Figure("plain MQTT QoS 1 publish -> shared subscriber (same payloads)", rate, "msg/s",
                  note=f"{len(msgs)} messages, TLS, no processing")  # fmt: skip


def _carry(kit: Path, passphrase: str, tmp: Path, broker: Broker,
           msgs: list[Envelope]) -> list[tuple[float, str]]:  # fmt: skip
    """The broker alone: the load generator publishes `msgs` (QoS 1, TLS) to one plain
    subscriber on a shared subscription that does nothing with them. Returns each arrival as
    (seconds after the first publish, topic), in arrival order. No ingest may be running."""
    from central.kit import load_kit

    k = load_kit(kit, passphrase)
    arrivals: list[tuple[float, str]] = []
    done = threading.Event()
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    sub.tls_set_context(k.tls_context(4))

    def on_message(_c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        arrivals.append((time.perf_counter(), msg.topic))
        if len(arrivals) == len(msgs):
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
    finished = done.wait(600)
    for c in (pub, sub):
        c.loop_stop()
        c.disconnect()
    if not finished:
        raise RuntimeError(f"the broker carried {len(arrivals)} of {len(msgs)} messages in 600 s")
    return [(t - t0, topic) for t, topic in arrivals]


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
            if phase == "closing storm" and (kind, workers) == HEADLINE:
                out[-1] = out[-1].answers(
                    "central ingest rate",
                    f"{len(msgs):,} signed final reports of {STATIONS:,} stations published QoS 1 "
                    "as fast as one load-generator TLS connection can, through real Mosquitto "
                    f"to central.server.CentralServer ({label}), until the last is stored "
                    "(verified, stored, aggregated, acked); baseline: the same payloads, same "
                    "broker, to a plain subscriber",
                )
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
                if q == 50 and (kind, workers) == HEADLINE:
                    out[-1] = out[-1].answers(
                        "publish-to-visible latency",
                        f"{len(lat)} sampled stations of the closing storm above: from the load "
                        "generator's publish of a station's final identification report to the "
                        "first version of central.results.latest_published that shows the "
                        "station delivered (polled every 50 ms)",
                    )
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
