"""A real election record for the verifier's tests: a CEC root, device and server
certificates, a day of signed messages from every station of the tiny election (every
contest kind), accepted by central/evidence.accept_batch in shuffled batches, manual
protocols saved through central/manual, published by central/results.publish and
exported by central/record.export_record."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central import evidence, results
from central.accounts import create_account
from central.db import Database
from central.kit import CentralKit, Device
from central.manual import ContestCount, read_scan, save_protocol
from central.record import export_record
from crypto import certs
from crypto.envelope import GENESIS_PREV, Envelope, sign_envelope
from election.bundle import BrokerSettings
from election.definition import ElectionDefinition
from tests.central.fake_stations import FakeStation, random_tally, tiny_definition
from verifier import cli

NOW = dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.UTC)
PUBLISHED_AT = dt.datetime(2026, 11, 29, 17, 0, tzinfo=dt.UTC)
EXPORTED_AT = dt.datetime(2026, 11, 29, 17, 5, tzinfo=dt.UTC)
RECEIVED = dt.datetime(2026, 11, 29, 15, 0, tzinfo=dt.UTC)
PDF = b"%PDF-1.4\n% a protocol scan\n%%EOF\n"
CENTRAL_DEVICE = "cec-central-1"


@dataclass(frozen=True)
class Authority:
    """A CEC root and everything it certified: the kit the server runs with, and each
    station device's signing key."""

    root_key: Ed25519PrivateKey
    kit: CentralKit
    station_keys: dict[str, Ed25519PrivateKey]

    @property
    def root(self) -> x509.Certificate:
        return self.kit.root_cert


def authority(definition: ElectionDefinition, path: Path) -> Authority:
    """A root, a signing certificate per station device ("dev-<number>") and the server's
    own record-signing certificate (station "CEC")."""
    root_key = Ed25519PrivateKey.generate()
    window = {"not_before": NOW - dt.timedelta(days=1), "not_after": NOW + dt.timedelta(days=400)}
    root = certs.make_root(root_key, not_before=window["not_before"], not_after=window["not_after"])
    h = definition.election_hash
    keys: dict[str, Ed25519PrivateKey] = {}
    devices = []
    for s in definition.stations:
        key = Ed25519PrivateKey.generate()
        cert = certs.issue_device_certificate(
            root_key, root, key.public_key(), station_id=s.id, device_id=f"dev-{s.number}",
            election_hash=h, purpose="signing", **window,
        )  # fmt: skip
        keys[s.id] = key
        devices.append(Device(s.id, f"dev-{s.number}", cert))
    ack_key = Ed25519PrivateKey.generate()
    ack_cert = certs.issue_device_certificate(
        root_key, root, ack_key.public_key(), station_id="CEC", device_id=CENTRAL_DEVICE,
        election_hash=h, purpose="signing", **window,
    )  # fmt: skip
    kit = CentralKit(path, definition, root, tuple(devices), ack_key, ack_cert,
                     BrokerSettings(), "unused")  # fmt: skip
    return Authority(root_key, kit, keys)


def day(
    definition: ElectionDefinition, keys: dict[str, Ed25519PrivateKey], seed: int
) -> list[Envelope]:
    """Every station's signed messages, with what a real day brings: test-mode messages
    before opening, turnout snapshots and heartbeats, a report whose body does not read,
    a turnout above the roll, a corrected second final report, a zero report signed after
    the final one, and a station that never closes."""
    rng = random.Random(seed)
    out: list[Envelope] = []
    for i, s in enumerate(definition.stations):
        f = FakeStation(definition, s.id, key=keys[s.id])
        reg = s.registered_voters
        voted = rng.randint(reg // 3, reg * 3 // 4)
        msgs = []
        if i % 3 == 0:  # logic-and-accuracy test before opening: never counts
            msgs.append(f.at(7, 0).final_report(f.tallies(rng, 30), mode="test"))
            msgs.append(f.at(7, 10).heartbeat(state="setup", mode="test", voted=30))
        msgs += [f.at(7, 55).zero_report(), f.at(8, 1).ident_report("first")]
        msgs.append(f.at(10, 5).turnout(voted // 4))
        msgs.append(f.at(12, 30).heartbeat(state="open", voted=voted // 2))
        msgs.append(f.at(15, 10).turnout(voted * 3 // 4))
        if i == 4:  # never closes, and one figure over the roll (not counted)
            msgs.append(f.at(16, 0).turnout(reg + 5))
            out += msgs
            continue
        if i == 3:  # a final report whose tally does not add up: stored, counts for nothing
            bad = f.tallies(rng, voted)
            bad[0] = bad[0].model_copy(update={"ballots": bad[0].ballots + 7})
            msgs.append(f.at(20, 1).final_report(bad))
        msgs.append(f.at(20, 2).final_report(f.tallies(rng, voted - rng.randint(0, 3))))
        if i == 2:  # a corrected second final report: the later one counts
            msgs.append(f.at(20, 20).final_report(f.tallies(rng, voted)))
        per_hour = _spread(rng, voted)
        msgs.append(f.at(20, 5).ident_report("final", per_hour))
        if i == 5:  # a zero report signed after the final one: never replaces it
            msgs.append(f.at(20, 30).zero_report())
        msgs.append(f.at(20, 40).heartbeat(state="transmitted"))
        out += msgs
    return out


def _spread(rng: random.Random, voted: int) -> dict[str, int]:
    hours = [f"{h:02d}" for h in range(8, 20)]
    counts = dict.fromkeys(hours, 0)
    for _ in range(voted):
        counts[rng.choice(hours)] += 1
    return {h: n for h, n in counts.items() if n}


def accept_shuffled(
    db: Database, definition: ElectionDefinition, envs: list[Envelope], seed: int
) -> None:
    """As two ingest workers deliver them: batches of mixed stations, out of order within
    a station, some messages twice."""
    rng = random.Random(seed)
    pending = list(envs) + rng.sample(envs, len(envs) // 5)
    rng.shuffle(pending)
    while pending:
        n = rng.randint(1, 12)
        batch, pending = pending[:n], pending[n:]
        evidence.accept_batch(db, definition, [(e, e.to_bytes(), RECEIVED) for e in batch])


def protocol(definition: ElectionDefinition, station_id: str, seed: int) -> dict[str, ContestCount]:
    """A consistent manual-count protocol for every contest of the station."""
    rng = random.Random(seed)
    out = {}
    for c in definition.contests_for_station(station_id):
        t = random_tally(c, rng, 300)
        out[c.id] = ContestCount(
            contest_id=c.id, received=1000, issued=320, spoiled=3, ballots=t.ballots,
            invalid=t.invalid, votes=dict(t.votes), preferences=dict(t.preferences),
        )  # fmt: skip
    return out


def enter_manual(db: Database, definition: ElectionDefinition, station_id: str, seed: int) -> None:
    commission = definition.station(station_id).commission_id
    clerk = create_account(
        db, f"clerk-{station_id}", "commission_operator", commission, "correct horse battery",
        scrypt_n=2**10, at=PUBLISHED_AT,
    )  # fmt: skip
    save_protocol(
        db, definition, clerk, station_id, protocol(definition, station_id, seed),
        read_scan(PDF + station_id.encode()), at=PUBLISHED_AT - dt.timedelta(minutes=30),
    )  # fmt: skip


def build_election(db: Database, tmp: Path, *, seed: int = 1) -> Authority:
    """The tiny election run through the real central code up to a published version."""
    definition = tiny_definition(registered=800)
    auth = authority(definition, tmp / "kit")
    evidence.load_stations(db, definition)
    accept_shuffled(db, definition, day(definition, auth.station_keys, seed), seed)
    enter_manual(db, definition, "uik-101", seed)
    enter_manual(db, definition, "uik-301", seed + 1)
    publish(db, auth)
    return auth


def publish(db: Database, auth: Authority, at: dt.datetime = PUBLISHED_AT) -> results.Publication:
    pub = results.publish(db, auth.kit.definition, at=at)
    assert not pub.problems, pub.problems
    return pub


def export(db: Database, auth: Authority, out: Path) -> Path:
    export_record(db, auth.kit, out, at=EXPORTED_AT)
    return out


def run(argv: list[str], capsys: Any) -> tuple[int, str]:
    """`shailoo verify ARGV` as the console runs it: exit status and what it printed."""
    code, out, _ = run_full(argv, capsys)
    return code, out


def run_full(argv: list[str], capsys: Any) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of `shailoo verify ARGV`."""
    parser = argparse.ArgumentParser(prog="shailoo")
    sub = parser.add_subparsers(dest="command", required=True)
    cli.register(sub)
    args = parser.parse_args(["verify", *argv])
    code = args.func(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def write_root(auth: Authority, path: Path) -> Path:
    path.write_bytes(certs.cert_to_pem(auth.root))
    return path


# --- changing a record after the fact -------------------------------------------------------


def bump_number(data: bytes, key: bytes) -> bytes:
    """One changed byte: the last digit of the first integer after `"key":`."""
    at = data.index(b'"' + key + b'":') + len(key) + 3
    end = at
    while data[end : end + 1].isdigit():
        end += 1
    assert end > at, f"no integer after {key!r}"
    last = data[end - 1]
    return data[: end - 1] + bytes([ord("0") + (last - ord("0") + 1) % 10]) + data[end:]


def manifest_with(record: Path, name: str) -> bytes:
    """MANIFEST.json re-hashed for a changed file, keeping the server's old signature."""
    wire = json.loads((record / "MANIFEST.json").read_bytes())
    import hashlib

    wire["body"]["files"][name] = hashlib.sha256((record / name).read_bytes()).hexdigest()
    return Envelope.from_bytes(
        json.dumps(wire, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    ).to_bytes()


def forge(record: Path, definition: ElectionDefinition, tmp: Path, *, shift: int) -> Authority:
    """A forger's complete record: their own root, device and server certificates, every
    message re-signed and chained, one party-list vote count moved by `shift` in every
    final ASU report; results.json rebuilt by the real central code from the forged
    messages.  Self-consistent: only a pinned root tells it apart."""
    from central.db import open_database

    forger = authority(definition, tmp / "forger-kit")
    db = open_database(f"sqlite:///{tmp / 'forger.sqlite'}")
    try:
        evidence.load_stations(db, definition)
        envs = []
        for path in sorted((record / "messages").glob("*.jsonl")):
            prev = GENESIS_PREV
            for line in path.read_bytes().splitlines():
                env = Envelope.from_bytes(line)
                body = _shifted(env, shift)
                new = sign_envelope(
                    forger.station_keys[env.station], kind=env.kind, election=env.election,
                    station=env.station, device=env.device, seq=env.seq, prev=prev,
                    time=env.time, body=body,
                )  # fmt: skip
                prev = new.hash
                envs.append(new)
        evidence.accept_batch(db, definition, [(e, e.to_bytes(), RECEIVED) for e in envs])
        publish(db, forger)
        out = tmp / "forged"
        export_record(db, forger.kit, out, at=EXPORTED_AT)
    finally:
        db.close()
    return forger


def _shifted(env: Envelope, shift: int) -> dict[str, Any]:
    body = json.loads(json.dumps(env.body))
    if env.kind == "asu_report" and body.get("phase") == "final" and body.get("mode") == "live":
        for t in body["tallies"]:
            if t["contest_id"] == "list":
                take = min(shift, t["votes"]["against-all"])
                t["votes"]["against-all"] -= take
                t["votes"]["pa"] += take
    return body  # type: ignore[no-any-return]
