"""Build one signed bundle per station, plus the signed national PIN index.

Input is the validated roll (`provision roll`): `roll.jsonl` sorted by station
number then PIN, and the distinct face templates.  Output:

    OUT/national-index/index.bin, manifest.json   one signed file for the country
    OUT/bundles/<station number>/...               one directory per station
    OUT/secrets/device-passphrases.csv             delivered sealed, apart from bundles
    OUT/central/...                                 the CEC server's kit (provisioning.central_kit)
    OUT/build-summary.json

Stations are built in a process pool (both cores); each worker reads its own
slice of the roll by byte offset, so memory stays flat however large the roll.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import os
import secrets
import shutil
import time
from array import array
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from crypto import atrest, certs, envelope
from election import bundle as B
from election.canonical import canonical_json
from election.definition import ElectionDefinition
from election.pin_index import HEADER, index_bytes, pin_key
from provisioning.ballots import layouts_for
from provisioning.central_kit import issue_central_identity, write_central_kit
from provisioning.keyceremony import RootCA, issue_device

Progress = Callable[[int, int], None]


class BuildError(RuntimeError):
    """The build cannot go on; the message says what to fix."""


@dataclass(frozen=True)
class BuildSummary:
    stations: int
    voters: int
    enrolled: int
    index_entries: int
    seconds: dict[str, float]
    out_dir: Path

    def to_obj(self) -> dict[str, object]:
        return {
            "stations": self.stations,
            "voters": self.voters,
            "enrolled": self.enrolled,
            "index_entries": self.index_entries,
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
        }

    def describe(self) -> str:
        return (
            f"{self.stations} station bundles with {self.voters} voters "
            f"({self.enrolled} with face templates) and a national index of "
            f"{self.index_entries} PINs written to {self.out_dir}"
        )


@dataclass(frozen=True)
class _Slice:
    station_id: str
    station_number: int
    offset: int
    length: int
    voters: int
    enrolled: int


def build_bundles(
    definition: ElectionDefinition,
    roll_dir: Path,
    root: RootCA,
    out_dir: Path,
    *,
    broker: B.BrokerSettings,
    now: dt.datetime,
    workers: int = 2,
    progress: Progress | None = None,
) -> BuildSummary:
    """Everything the CEC hands to stations for this election."""
    roll_path = roll_dir / "roll.jsonl"
    if not roll_path.exists():
        raise BuildError(f"{roll_path} not found: run `shailoo provision roll` first")
    if out_dir.exists() and any(out_dir.iterdir()):
        raise BuildError(f"{out_dir} is not empty; build into a new directory")
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    index_secret = secrets.token_bytes(32)
    slices, pin_keys, positions = _scan_roll(definition, roll_path, index_secret)
    timings["scan_roll"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    index_ref = _write_index(
        definition,
        index_bytes(pin_keys, positions, len(definition.stations)),
        root,
        out_dir / "national-index",
        now,
    )
    del pin_keys, positions
    timings["national_index"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    (out_dir / "bundles").mkdir(parents=True)
    secrets_dir = out_dir / "secrets"
    secrets_dir.mkdir(mode=0o700)
    layouts = layouts_for(definition)
    central = issue_central_identity(root, definition, now=now)
    job = _Job(
        definition_bytes=definition.canonical_bytes(),
        layouts_bytes=canonical_json(layouts.model_dump(mode="json")),
        roll_path=roll_path,
        templates_dir=roll_dir,
        root_key_raw=root.key.private_bytes_raw(),
        root_cert_pem=certs.cert_to_pem(root.cert),
        central_cert_pem=certs.cert_to_pem(central.signing_cert),
        index_secret=index_secret,
        index_ref=index_ref,
        broker=broker,
        now=now,
        out_dir=out_dir / "bundles",
    )
    rows: list[tuple[str, str, str]] = []
    devices: list[tuple[str, str, bytes]] = []
    done = 0
    with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker, initargs=(job,)) as ex:
        for built in ex.map(_build_one, slices, chunksize=8):
            rows.append((str(built.station_number), built.device_id, built.passphrase))
            devices.append((built.station_id, built.device_id, built.signing_cert_pem))
            done += 1
            if progress:
                progress(done, len(slices))
    _write_passphrases(secrets_dir / "device-passphrases.csv", rows)
    timings["bundles"] = time.perf_counter() - t0
    write_central_kit(out_dir, definition, root, central, devices, broker=broker)

    summary = BuildSummary(
        stations=len(slices),
        voters=sum(s.voters for s in slices),
        enrolled=sum(s.enrolled for s in slices),
        index_entries=index_ref.entries,
        seconds=timings,
        out_dir=out_dir,
    )
    (out_dir / "build-summary.json").write_text(json.dumps(summary.to_obj(), indent=1) + "\n")
    return summary


def _scan_roll(
    definition: ElectionDefinition, roll_path: Path, index_secret: bytes
) -> tuple[list[_Slice], np.ndarray, np.ndarray]:
    """Byte ranges of each station's voters, and keyed PIN hashes with station positions."""
    position = {s.id: i for i, s in enumerate(definition.stations)}
    ranges: dict[str, list[int]] = {}  # station id -> [offset, length, voters, enrolled]
    pin_keys = array("Q")
    positions = array("I")
    offset = 0
    last = ""
    with roll_path.open("rb") as f:
        for lineno, line in enumerate(f, start=1):
            voter = json.loads(line)
            sid = voter["station"]
            if sid not in position:
                raise BuildError(f"{roll_path}:{lineno}: station {sid} is not in the definition")
            if sid != last and sid in ranges:
                raise BuildError(f"{roll_path} is not sorted by station (line {lineno})")
            r = ranges.setdefault(sid, [offset, 0, 0, 0])
            r[1] += len(line)
            r[2] += 1
            r[3] += voter["biometrics"] == "enrolled"
            pin_keys.append(pin_key(index_secret, voter["pin"]))
            positions.append(position[sid])
            offset += len(line)
            last = sid
    slices = []
    for s in definition.stations:
        off, length, voters, enrolled = ranges.get(s.id, [0, 0, 0, 0])
        slices.append(_Slice(s.id, s.number, off, length, voters, enrolled))
    return slices, np.frombuffer(pin_keys, dtype=np.uint64), np.frombuffer(positions, np.uint32)


def _write_index(
    definition: ElectionDefinition,
    data: bytes,
    root: RootCA,
    index_dir: Path,
    now: dt.datetime,
) -> B.IndexRef:
    index_dir.mkdir(parents=True)
    (index_dir / B.INDEX_FILE).write_bytes(data)
    body = B.IndexManifest(
        election_hash=definition.election_hash,
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        entries=(len(data) - HEADER.size) // 12,
        stations=len(definition.stations),
    )
    env = _sign(root, B.INDEX_KIND, definition.election_hash, body.model_dump(mode="json"), now)
    manifest = env.to_bytes()
    (index_dir / B.MANIFEST_FILE).write_bytes(manifest)
    return B.IndexRef(
        sha256=body.sha256,
        size=body.size,
        entries=body.entries,
        manifest_sha256=hashlib.sha256(manifest).hexdigest(),
    )


def _sign(
    root: RootCA, kind: str, election_hash: str, body: dict[str, object], now: dt.datetime
) -> envelope.Envelope:
    return envelope.sign_envelope(
        root.key,
        kind=kind,
        election=election_hash,
        station=envelope.CEC_STATION,
        device=root.key_id,
        seq=0,
        prev=envelope.GENESIS_PREV,
        time=now.isoformat(timespec="seconds"),
        body=body,
    )


# --- per-station work, in worker processes -------------------------------------------


@dataclass(frozen=True)
class _Job:
    definition_bytes: bytes
    layouts_bytes: bytes
    roll_path: Path
    templates_dir: Path
    root_key_raw: bytes
    root_cert_pem: bytes
    central_cert_pem: bytes
    index_secret: bytes
    index_ref: B.IndexRef
    broker: B.BrokerSettings
    now: dt.datetime
    out_dir: Path


_W: dict[str, object] = {}


def _init_worker(job: _Job) -> None:
    meta_path = job.templates_dir / B.TEMPLATES_META_FILE
    hashes: list[str] = json.loads(meta_path.read_text())["hashes"] if meta_path.exists() else []
    npy = job.templates_dir / B.TEMPLATES_FILE
    _W["job"] = job
    _W["definition"] = ElectionDefinition.from_json(job.definition_bytes)
    _W["templates"] = np.load(npy, mmap_mode="r") if npy.exists() else np.zeros((0, 128))
    _W["row_of"] = {h: i for i, h in enumerate(hashes)}
    _W["root"] = RootCA(
        Ed25519PrivateKey.from_private_bytes(job.root_key_raw),
        certs.cert_from_pem(job.root_cert_pem),
    )


@dataclass(frozen=True)
class _Built:
    station_id: str
    station_number: int
    device_id: str
    passphrase: str
    signing_cert_pem: bytes


def _build_one(s: _Slice) -> _Built:
    job: _Job = _W["job"]  # type: ignore[assignment]
    definition: ElectionDefinition = _W["definition"]  # type: ignore[assignment]
    root: RootCA = _W["root"]  # type: ignore[assignment]
    templates: np.ndarray = _W["templates"]  # type: ignore[assignment]
    row_of: dict[str, int] = _W["row_of"]  # type: ignore[assignment]

    with job.roll_path.open("rb") as f:
        f.seek(s.offset)
        roll = f.read(s.length)
    wanted = sorted({v["template"] for v in _voters(roll) if v.get("template")})
    missing = [h for h in wanted if h not in row_of]
    if missing:
        raise BuildError(f"station {s.station_number}: no template for photo {missing[0][:12]}")
    station_templates = (
        np.asarray(templates[[row_of[h] for h in wanted]], dtype=np.float32)
        if wanted
        else np.zeros((0, 128), dtype=np.float32)
    )
    creds = issue_device(
        root,
        station_id=s.station_id,
        election_hash=definition.election_hash,
        now=job.now,
        until=dt.datetime.combine(definition.date, dt.time(23, 59), tzinfo=job.now.tzinfo),
    )
    files: dict[str, bytes] = {
        B.ELECTION_FILE: job.definition_bytes,
        B.ROLL_FILE: roll,
        B.TEMPLATES_FILE: _npy_bytes(station_templates),
        B.TEMPLATES_META_FILE: canonical_json({"hashes": wanted}),
        B.ROOT_CERT_FILE: job.root_cert_pem,
        B.CENTRAL_CERT_FILE: job.central_cert_pem,
        B.SIGNING_KEY_FILE: creds.signing_key_pem,
        B.SIGNING_CERT_FILE: certs.cert_to_pem(creds.signing_cert),
        B.TLS_KEY_FILE: creds.tls_key_pem,
        B.TLS_CERT_FILE: certs.cert_to_pem(creds.tls_cert),
        B.INDEX_KEY_FILE: atrest.encrypt(
            job.index_secret, creds.passphrase, log2_n=atrest.MIN_LOG2_N
        ),  # random passphrase: a cheap KDF suffices
        B.BROKER_FILE: canonical_json(job.broker.model_dump(mode="json")),
        B.LAYOUTS_FILE: job.layouts_bytes,
    }
    manifest = B.BundleManifest(
        election_id=definition.id,
        election_hash=definition.election_hash,
        station_id=s.station_id,
        station_number=s.station_number,
        device_id=creds.device_id,
        voters=s.voters,
        enrolled=s.enrolled,
        files=file_entries(files),
        national_index=job.index_ref,
    )
    write_bundle(root, manifest, files, job.out_dir / str(s.station_number), job.now)
    return _Built(
        s.station_id,
        s.station_number,
        creds.device_id,
        creds.passphrase,
        files[B.SIGNING_CERT_FILE],
    )


def file_entries(files: dict[str, bytes]) -> dict[str, B.FileEntry]:
    """The manifest's table of contents: each file's SHA-256 and size."""
    return {
        name: B.FileEntry(sha256=hashlib.sha256(data).hexdigest(), size=len(data))
        for name, data in files.items()
    }


def write_bundle(
    root: RootCA,
    manifest: B.BundleManifest,
    files: dict[str, bytes],
    final: Path,
    now: dt.datetime,
) -> None:
    """Sign `manifest` with the root and write the bundle to `final` in one step (a hidden
    temporary directory beside it, renamed at the end); the device's keys readable by the
    owner only.  `final` must not exist."""
    env = _sign(root, B.BUNDLE_KIND, manifest.election_hash, manifest.model_dump(mode="json"), now)
    tmp = final.parent / f".{final.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    for name, data in {**files, B.MANIFEST_FILE: env.to_bytes()}.items():
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        if name.startswith("device/"):
            os.chmod(path, 0o600)
    os.replace(tmp, final)


def _voters(roll: bytes) -> Iterator[dict[str, str]]:
    for line in roll.splitlines():
        if line.strip():
            yield json.loads(line)


def _npy_bytes(a: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue()


def _write_passphrases(path: Path, rows: list[tuple[str, str, str]]) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["station", "device_id", "passphrase"])
        rows.sort(key=lambda row: int(row[0]))
        w.writerows(rows)
