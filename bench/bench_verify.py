"""`shailoo verify` on the record of a national-size election.

Set-up (not timed): the sample parliament election at full size (STATIONS stations,
the party list with its ~250 candidates and 36 single-member districts: 37 contests);
a CEC root, one signing certificate per station device and the server's own
certificate; every station's day signed with its own Ed25519 key and chained (zero
report, first identification report, TURNOUTS turnout snapshots, a heartbeat, final
ASU report, final identification report, a closing heartbeat); accepted by
`central.evidence.accept_batch`, a manual-count protocol entered for MANUAL_SHARE of
the stations through `central.manual.save_protocol`, published by `results.publish`
and exported by `central.record.export_record`, all on SQLite in a temporary directory.

Timed: `python -m verifier DIR --json` in a new process, exactly what `shailoo verify
DIR` does (hash every file, check every certificate, signature and chain, rebuild the
results document, compare bytes), imports included; then its three parts in this
process, with the set-up's objects freed first (they would slow Python's collector).

Baseline: the cryptography alone, on the same messages in the same run: SHA-256 of each
message's bytes and one Ed25519 verification of its signature (signed bytes prepared
beforehand), i.e. what no verifier can avoid.
"""

from __future__ import annotations

import datetime as dt
import gc
import hashlib
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench import Figure, format_table, one_core
from bench.common import StationSigner, tally
from central import evidence, results
from central.accounts import create_account
from central.db import open_database
from central.kit import CentralKit, Device
from central.manual import ContestCount, read_scan, save_protocol
from central.record import export_record
from crypto import certs
from crypto.envelope import Envelope, signing_bytes
from election.bundle import BrokerSettings
from election.definition import ElectionDefinition, Station
from election.tally import ContestTally
from provisioning.sample import build_definition
from verifier import check, compare, recompute
from verifier import record as R

STATIONS = 2500
TURNOUTS = 3
MANUAL_SHARE = 0.2  # the hand counts entered by the time the record is fetched
BATCH = 300
TZ = ZoneInfo("Asia/Bishkek")
DAY = dt.date(2026, 11, 29)
T0 = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)


def _kit(definition: ElectionDefinition, path: Path) -> tuple[CentralKit, dict[str, Any]]:
    """A root, one certified signing key per station device, the server's certificate."""
    root_key = Ed25519PrivateKey.generate()
    nb, na = T0 - dt.timedelta(days=1), T0 + dt.timedelta(days=400)
    root = certs.make_root(root_key, not_before=nb, not_after=na)
    keys, devices = {}, []
    for s in definition.stations:
        key = Ed25519PrivateKey.generate()
        cert = certs.issue_device_certificate(
            root_key, root, key.public_key(), station_id=s.id, device_id=f"dev-{s.number}",
            election_hash=definition.election_hash, purpose="signing", not_before=nb,
            not_after=na,
        )  # fmt: skip
        keys[s.id] = key
        devices.append(Device(s.id, f"dev-{s.number}", cert))
    ack = Ed25519PrivateKey.generate()
    ack_cert = certs.issue_device_certificate(
        root_key, root, ack.public_key(), station_id="CEC", device_id="cec-central-1",
        election_hash=definition.election_hash, purpose="signing", not_before=nb, not_after=na,
    )  # fmt: skip
    kit = CentralKit(path, definition, root, tuple(devices), ack, ack_cert, BrokerSettings(), "")
    return kit, keys


class _Device(StationSigner):
    """One station's device: signs its messages with its own key, chained, and keeps them."""

    def __init__(self, definition: ElectionDefinition, station: Station, key: Any) -> None:
        super().__init__(definition, station.id, f"dev-{station.number}", key)
        self.out: list[Envelope] = []

    def add(self, kind: str, body: dict[str, Any], hh: int, mm: int = 1) -> None:
        self.out.append(self.sign(kind, {"mode": "live", **body}, hh, mm))


def _day(definition: ElectionDefinition, keys: dict[str, Any], seed: int) -> list[Envelope]:
    rng = random.Random(seed)
    out: list[Envelope] = []
    for s in definition.stations:
        d = _Device(definition, s, keys[s.id])
        contests = definition.contests_for_station(s.id)
        voted = rng.randint(s.registered_voters // 3, s.registered_voters * 3 // 4)
        zeros = [ContestTally.zero(c).to_obj() for c in contests]
        asu = {"sheets": 0, "deferred_sheets": 0, "returned": {}, "deferred_tallies": []}
        d.add("asu_report", {**asu, "phase": "zero", "tallies": zeros}, 7, 50)
        d.add("identification_report", _ident("first", 0, 7), 7, 55)
        for i in range(TURNOUTS):
            hh = 10 + 3 * i
            at = dt.datetime.combine(DAY, dt.time(hh, 1), tzinfo=TZ).isoformat()
            n = voted * (i + 1) // (TURNOUTS + 1)
            d.add("turnout", {"as_of": at, "registered": s.registered_voters, "voted": n}, hh)
        d.add("heartbeat", {"state": "open", "voted": voted * 9 // 10, "battery_percent": 80}, 19)
        tallies = [tally(c, rng, voted - rng.randint(0, 5)).to_obj() for c in contests]
        sheets = max(t["ballots"] for t in tallies)
        d.add("asu_report", {**asu, "phase": "final", "tallies": tallies, "sheets": sheets,
                              "voters_identified": voted, "problems": []}, 20, 2)  # fmt: skip
        d.add("identification_report", _ident("final", voted, 20), 20, 5)
        d.add("heartbeat", {"state": "transmitted", "battery_percent": 75}, 20, 30)
        out += d.out
    return out


def _ident(phase: str, n: int, hh: int) -> dict[str, Any]:
    at = dt.datetime.combine(DAY, dt.time(hh, 1), tzinfo=TZ).isoformat()
    half = n // 2
    return {"phase": phase, "as_of": at, "voted": n, "identified_by_face": n,
            "admitted_by_document": 0, "mobile_box": 0,
            "by_hour": {k: v for k, v in (("09", half), ("15", n - half)) if v}}  # fmt: skip


def _manual(db: Any, definition: ElectionDefinition, seed: int) -> int:
    rng = random.Random(seed)
    clerks: dict[str, Any] = {}
    entered = 0
    for s in rng.sample(definition.stations, int(len(definition.stations) * MANUAL_SHARE)):
        clerk = clerks.get(s.commission_id)
        if clerk is None:
            clerk = clerks[s.commission_id] = create_account(
                db, f"clerk-{s.commission_id}", "commission_operator", s.commission_id,
                "correct horse battery", scrypt_n=2**10, at=T0,
            )  # fmt: skip
        counts = {}
        for c in definition.contests_for_station(s.id):
            t = tally(c, rng, 600)
            counts[c.id] = ContestCount(
                contest_id=c.id, received=2000, issued=700, spoiled=3, ballots=t.ballots,
                invalid=t.invalid, votes=dict(t.votes), preferences=dict(t.preferences),
            )  # fmt: skip
        scan = read_scan(b"%PDF-1.4\n" + s.id.encode() + b"\n%%EOF\n")
        at = dt.datetime(2026, 11, 29, 18, 0, tzinfo=dt.UTC)
        save_protocol(db, definition, clerk, s.id, counts, scan, at=at)
        entered += 1
    return entered


def build_record(base: Path) -> tuple[Path, list[Envelope], ElectionDefinition]:
    """The exported record of a complete national election (see the module docstring)."""
    definition = build_definition(stations=STATIONS, voters_per_station=1500, seed=1)
    kit, keys = _kit(definition, base / "kit")
    envs = _day(definition, keys, 1)
    db = open_database(f"sqlite:///{base / 'central.sqlite'}")
    try:
        evidence.load_stations(db, definition)
        at = dt.datetime(2026, 11, 29, 15, 0, tzinfo=dt.UTC)
        for i in range(0, len(envs), BATCH):
            chunk = envs[i : i + BATCH]
            evidence.accept_batch(db, definition, [(e, e.to_bytes(), at) for e in chunk])
        _manual(db, definition, 2)
        pub = results.publish(db, definition, at=dt.datetime(2026, 11, 29, 19, 0, tzinfo=dt.UTC))
        assert pub.new and not pub.problems, pub.problems
        export_record(db, kit, base / "record", at=dt.datetime(2026, 11, 29, 19, 5, tzinfo=dt.UTC))
    finally:
        db.close()
    return base / "record", envs, definition


def _prepare(envs: list[Envelope], keys: dict[str, Any]) -> list[tuple[bytes, bytes, bytes, Any]]:
    """Wire bytes, signature, signed bytes and public key of every message."""
    return [(e.to_bytes(), e.signature, signing_bytes(e), keys[e.station]) for e in envs]


def _crypto_only(prepared: list[tuple[bytes, bytes, bytes, Any]]) -> float:
    start = time.perf_counter()
    for raw, sig, signed, key in prepared:
        hashlib.sha256(raw).digest()
        key.verify(sig, signed)
    return time.perf_counter() - start


def _fresh_process(record: Path) -> float:
    """`python -m verifier DIR` (= `shailoo verify DIR`) as a user runs it: a new process,
    imports included, exit status 0 required."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "verifier", str(record), "--json"],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        check=False,
    )
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"verify failed ({done.returncode}): {done.stdout[-2000:]!r}")
    report = json.loads(done.stdout)
    assert report["comparison"]["identical_bytes"], report["errors"][:5]
    return took


def main() -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="shailoo-bench-verify-") as tmp:
        start = time.perf_counter()
        record, envs, definition = build_record(Path(tmp))
        t_build = time.perf_counter() - start
        size = sum(p.stat().st_size for p in record.rglob("*") if p.is_file())
        keys = {}
        for d in json.loads((record / "devices.json").read_bytes())["devices"]:
            keys[d["station_id"]] = certs.cert_from_pem(d["signing_cert"].encode()).public_key()
        n, contests = len(envs), len(definition.contests)
        prepared = _prepare(envs, keys)
        del envs, definition  # the parts below run without the set-up's objects alive
        gc.collect()
        t_base = _crypto_only(prepared)
        t_all = _fresh_process(record)

        files = R.load(record, str(record))
        start = time.perf_counter()
        checked = check.check_record(files, None)
        t_check = time.perf_counter() - start
        assert checked.definition is not None
        manual = {sid: p.tallies for sid, p in checked.manual.items()}
        start = time.perf_counter()
        rebuilt = recompute.rebuild(checked.definition, checked.messages, manual)
        t_rebuild = time.perf_counter() - start
        start = time.perf_counter()
        same = compare.same_bytes(rebuilt.document, checked.results or b"")
        t_compare = time.perf_counter() - start
        assert same
        results_mb = len(checked.results or b"") / 1e6
    base = Figure(f"SHA-256 + Ed25519 verify, {n} messages", t_base, "s")
    note = f"{STATIONS} stations, {contests} contests, {n} messages"
    return [
        base,
        Figure(
            "shailoo verify DIR (new process)", t_all, "s", t_all / t_base, base.name, note
        ).answers(
            "verifier time",
            f"`python -m verifier DIR --json` (= shailoo verify) in a new process, imports "
            f"included, on the exported record of a {STATIONS:,}-station election ({n:,} signed "
            "messages, manual counts, published results); baseline: SHA-256 + one Ed25519 "
            "verification per message, nothing else",
        ),
        Figure(
            "  of which check files, certificates, signatures, chains",
            t_check,
            "s",
            t_check / t_base,
            base.name,
        ),  # fmt: skip
        Figure("  of which rebuild the results document", t_rebuild, "s"),
        Figure("  of which compare canonical bytes", t_compare, "s"),
        Figure("messages verified per second", n / t_all, "msg/s"),
        Figure("record size", size / 1e6, "MB", None, "", f"results.json {results_mb:.1f} MB"),
        Figure("set-up: sign, accept, publish, export (not a verifier figure)", t_build, "s"),
    ]


if __name__ == "__main__":
    print(f"one core ({one_core()})")
    print(format_table([("verify", f) for f in main()]))
    sys.exit(0)
